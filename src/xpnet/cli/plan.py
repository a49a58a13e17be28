"""What `xpnet train` is about to do, checked before anything is trained or written: a new
run (`TrainingPlan.new`) or a saved run continued (`TrainingPlan.resume`), each with its
options, data splits, net, optimizer, history and early stopping."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint, load_checkpoint, read_checkpoint
from ..data import DOWNLOADED, Dataset
from ..distributed import Communicator
from ..inputs import check_range
from ..optim import OPTIMIZERS, Optimizer
from ..sequential import Sequential
from ..stopping import EarlyStopping
from ..train import History
from .config import (
    Splits,
    build_net,
    build_optimizer,
    check_memory,
    check_processes,
    check_same_data,
    check_task,
    data_digest,
    load_data,
    net_sizes,
    placement,
    split,
)
from .errors import UsageError
from .historylog import read_history
from .options import RESUMABLE, TrainOptions, given
from .runs import BEST
from .standardize import Standardization

__all__ = ["TrainingPlan"]


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """A run ready to train from epoch `start` to `options.epochs`; `out` is the run
    directory given (None: a new one under runs/)."""

    options: TrainOptions
    out: Path | None
    data: Dataset
    splits: Splits
    net: Sequential
    optimizer: Optimizer
    history: History
    start: int
    stopper: EarlyStopping | None
    scaling: Standardization | None = None  # --standardize: applied to every split

    @property
    def classes(self) -> np.ndarray | None:
        """The label each class code stands for (None: a regression)."""
        return self.data.classes

    @classmethod
    def new(cls, args: argparse.Namespace, group: Communicator) -> TrainingPlan:
        """A new run from the command line: the data loaded and split (its digests recorded),
        the net's memory checked, then a fresh net and optimizer."""
        options = TrainOptions.from_args(args)
        check_processes(options, group.size)
        check_task(options)
        data = _load(options, None, args.quiet, group)
        splits = split(data, options)
        scaling = Standardization.of(splits.fit.X) if options.standardize else None
        for part in (data, splits.test):  # as the files hold them: rows are the files' rows
            X = part.X if scaling is None else scaling(part.X)
            check_range(X, options.dtype, f"the data {part.name}", "give --dtype float64")
        splits = _standardized(splits, scaling)
        options = dataclasses.replace(
            options,
            data_sha256=data_digest(data, options.data),
            test_data_sha256=None
            if options.test_data is None
            else data_digest(splits.test, options.test_data),
        )
        check_memory(
            net_sizes(options, data),
            options.backend,
            options.device,
            len(splits.fit),
            options.dtype,
            options.batch_size,
            n_eval=splits.largest_evaluation,
            slots=len(OPTIMIZERS[options.optimizer].slots),
        )
        patience = options.early_stopping
        return cls(
            options=options,
            out=args.out,
            data=data,
            splits=splits,
            net=_with_precision(build_net(options, data, options.dtype), options),
            optimizer=build_optimizer(options),
            history=History(),
            start=0,
            stopper=None if patience is None else EarlyStopping(patience=patience),
            scaling=scaling,
        )

    @classmethod
    def resume(cls, args: argparse.Namespace, group: Communicator) -> TrainingPlan:
        """The run in `args.resume` continued to `--epochs`: its options, net, optimizer,
        history and early stopping as saved, its data checked to be unchanged (labels coded
        by the checkpoint's classes, as the run coded them)."""
        run: Path = args.resume
        options, ck = _saved_run(args)
        check_processes(options, group.size)
        data = _load(options, ck.classes, args.quiet, group)
        check_same_data(data, options.data, options.data_sha256, run, "resume")
        splits = split(data, options)
        if options.test_data is not None:
            check_same_data(splits.test, options.test_data, options.test_data_sha256, run, "resume")
        assert ck.optimizer is not None  # _saved_run refuses a run without one
        scaling = Standardization.stored(ck.metadata)
        splits = _standardized(splits, scaling)
        return cls(
            options=options,
            out=run,
            data=data,
            splits=splits,
            net=_with_precision(ck.net, options),
            optimizer=ck.optimizer,
            history=History(_saved_history(ck, run)),
            start=ck.epoch,
            stopper=_saved_stopper(options, ck, run),
            scaling=scaling,
        )


def _standardized(splits: Splits, scaling: Standardization | None) -> Splits:
    """Every split standardized by `scaling` (None: as they are)."""
    if scaling is None:
        return splits
    fit_set, val_set, test_set = splits
    return Splits(
        scaling.dataset(fit_set),
        None if val_set is None else scaling.dataset(val_set),
        scaling.dataset(test_set),
    )


def _with_precision(net: Sequential, options: TrainOptions) -> Sequential:
    """The net under the run's --precision (a resumed one keeps its loss scale), or a usage
    error saying which backend can run it."""
    try:
        net.set_precision(options.precision)
    except ValueError as err:
        raise UsageError(f"--precision {options.precision}: {err}") from err
    return net


def _load(
    options: TrainOptions, classes: np.ndarray | None, quiet: bool, group: Communicator
) -> Dataset:
    """The run's data; a dataset downloaded on first use is fetched by rank 0, and the other
    ranks read its cache once it has."""
    spec = options.data
    fetched_by_lead = spec in DOWNLOADED
    lead = group.rank == 0
    if fetched_by_lead and not lead:
        group.barrier()  # rank 0 has loaded (and so cached) the data
    data = load_data(spec, options.task, classes, quiet)
    if fetched_by_lead and lead:
        group.barrier()
    return data


def _saved_run(args: argparse.Namespace) -> tuple[TrainOptions, Checkpoint]:
    """The stored options of the run in `args.resume`, updated with --epochs/--backend/
    --device, and its checkpoint loaded on that backend."""
    fixed = [k for k in given(args) if k not in RESUMABLE]
    if fixed or args.out is not None:
        name = "--" + (fixed[0] if fixed else "out").replace("_", "-")
        raise UsageError(
            f"{name} cannot change when resuming: --resume continues the run as it was set up "
            "(only --epochs, --backend, --device, --quiet, --log-every and --save-every may be "
            "given)"
        )
    stored = read_checkpoint(args.resume)  # read once: its options say where to load it
    options = TrainOptions.from_stored(stored.metadata.get("options"), args.resume)
    if args.backend is not None and args.device is None:
        options = dataclasses.replace(options, device=None)  # the stored one is the backend's
    options = dataclasses.replace(options, **given(args))
    ck = stored.load(options.backend, placement(options))
    if ck.optimizer is None:  # saved by xpnet.save without optimizer=: fit would start afresh
        raise UsageError(
            f"{args.resume} holds no optimizer state, so it cannot resume; train a new run"
        )
    if args.epochs is None or args.epochs <= ck.epoch:
        raise UsageError(
            f"the run in {args.resume} has {ck.epoch} epochs; give the total to reach with "
            f"--epochs N, N > {ck.epoch}"
        )
    return options, ck


def _saved_history(ck: Checkpoint, run: Path) -> list[dict[str, float]]:
    """The records of the epochs the checkpoint holds: from its header (runs saved before
    the history moved beside it), else the first lines of the run's history.csv."""
    if ck.history or ck.epoch == 0:
        return [dict(r) for r in ck.history]
    return read_history(run / "history.csv", ck.epoch)


def _saved_stopper(options: TrainOptions, ck: Checkpoint, run: Path) -> EarlyStopping | None:
    """The run's early stopping (None when off) with the state and the best weights the run
    saved, so that it goes on as if never interrupted."""
    if options.early_stopping is None:
        return None
    stopper = EarlyStopping(patience=options.early_stopping)
    state = ck.metadata.get("early_stopping")
    if isinstance(state, dict):
        stopper.load_state_dict(state)
        if stopper.best_epoch is not None:
            best = load_checkpoint(run / BEST, ck.net.backend, ck.net.backend.device)
            if best.epoch > ck.epoch:  # saved just before a checkpoint that was not written
                return _replaying(stopper, best.epoch, options, run)
            if best.epoch != stopper.best_epoch:
                raise UsageError(
                    f"{run / BEST} holds epoch {best.epoch}, but the run's best epoch is "
                    f"{stopper.best_epoch}: the run was interrupted while saving; train a new "
                    "run"
                )
            stopper.best_parameters = best.net.parameter_buffer.flat_parameters()
    return stopper


def _replaying(
    stopper: EarlyStopping, best_epoch: int, options: TrainOptions, run: Path
) -> EarlyStopping:
    """Resume from a checkpoint older than best.safetensors (the run was killed between
    writing the two): training is deterministic, so the resumed run improves again in the
    epochs after the checkpoint, up to that best epoch, and keeps those weights; the older
    best's weights are not needed if it reaches that epoch."""
    if options.epochs < best_epoch:
        raise UsageError(
            f"{run / BEST} holds epoch {best_epoch}, after the checkpoint: resume with "
            f"--epochs {best_epoch} or more to train up to it again"
        )
    stopper.best_parameters = None
    return stopper
