"""`xpnet train`: train a net, keeping its run directory up to date, and save the run."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..checkpoint import FILENAME
from ..distributed import Communicator
from ..files import remove_stale_temporaries
from ..losses import LOSSES, Loss
from ..tensorboard_log import TensorBoard
from ..train import Callback, fit
from . import parallel, signals
from .announce import header
from .errors import EXIT_DIVERGED, EXIT_OK, UsageError
from .outputs import Outputs
from .plan import TrainingPlan
from .report import finish, interrupted
from .runs import BEST, RUN_FILES, json_bytes, new_run_dir, run_config
from .saving import RunSaver
from .scores import scores

__all__ = ["cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    """Train and save a run: plan it (new or resumed), announce it, fit, finish. Under a
    launcher (`mpiexec -n N xpnet train ...`) every rank runs this with the same data, and
    trains its shard of each batch (`fit(comm=...)`); rank 0 alone prints and writes the run
    directory. Ctrl-C and SIGTERM save the last whole epoch (see `report.interrupted`)."""
    group = parallel.join()
    lead = group.rank == 0
    outputs = Outputs(args.overwrite)
    if lead:
        _claim_run(args, outputs)
    plan = (
        TrainingPlan.new(args, group) if args.resume is None else TrainingPlan.resume(args, group)
    )
    group = parallel.gpu_communicator(group, plan.net.backend)
    threads = parallel.limit_threads()
    board = _tensorboard(args.tensorboard, plan) if lead and args.tensorboard else None
    if lead:
        print(header(plan, group, threads))
    group.barrier()  # every rank's setup is good (or a failed one has ended the job)
    saver = _saver(plan, group.size, outputs, args.save_every) if lead else None
    logging = lead and not args.quiet and not sys.stderr.isatty()
    epochs = _Epochs(plan, saver, args.log_every or 1, logging)
    loss = LOSSES[plan.options.loss]()
    started = time.perf_counter()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a NaN: guarded
        try:
            callbacks: list[Callback] = [epochs.guard, epochs.save, epochs.log]  # guard first
            callbacks += [board] if board is not None else []
            progress = sys.stderr.isatty() and not args.quiet
            _fit(plan, loss, callbacks, group, progress=progress, compiled=not args.eager)
            epochs.log_stop()
            if saver is None:  # the other ranks are done: rank 0 writes the run
                group.barrier()
                return EXIT_OK if epochs.diverged is None else EXIT_DIVERGED
            test_set = plan.splits.test
            test = None if epochs.diverged else scores(plan.net, test_set, loss)
        except KeyboardInterrupt as stop:
            with signals.held():  # a second Ctrl-C does not cut the saving short
                return interrupted(plan, saver, group, signals.exit_status(stop))
        finally:
            if board is not None:
                board.close()
    with signals.held() as caught:  # the run's last files are written whole
        status = finish(plan, test, saver, epochs.diverged, time.perf_counter() - started)
    if caught:
        print(
            f"xpnet train: interrupted after the run finished; every file in {saver.out} is "
            "written",
            file=sys.stderr,
        )
        status = signals.exit_status(caught[0])
    group.barrier()  # the others wait for the run to be written
    return status


def _claim_run(args: argparse.Namespace, outputs: Outputs) -> None:
    """Before anything is loaded: refuse a run directory whose files are not this run's to
    replace; a resumed run's own files are its to replace; leftover temporary files of a
    save that was killed are removed."""
    if args.resume is not None:
        run: Path = args.resume
        if os.path.lexists(run) and not run.is_dir():
            raise UsageError(_not_a_run_directory(run))
        outputs.adopt(run / name for name in RUN_FILES)
    elif args.out is not None:
        run = args.out
        if os.path.lexists(run) and not run.is_dir():
            raise UsageError(f"--out {run} is a file; --out names the run's directory")
        if (run / FILENAME).exists() and not args.overwrite:
            raise UsageError(
                f"{run} already holds a run; continue it with --resume {run} --epochs N, "
                "choose another --out, or give --overwrite to replace it"
            )
        for name in RUN_FILES:
            outputs.claim(run / name)
    else:
        return
    for name in RUN_FILES:
        remove_stale_temporaries(run / name)


def _not_a_run_directory(run: Path) -> str:
    """What to say of `--resume FILE`: the run directory it belongs to, when it is a run's
    checkpoint (a file is no place to write the run's other files)."""
    hint = (
        f"--resume {run.parent}"
        if (run.parent / FILENAME).is_file() and run.name in (FILENAME, BEST)
        else f"the directory `xpnet train` wrote ({FILENAME} in it)"
    )
    return f"--resume takes a run directory, not a file ({run}); give {hint}"


def _saver(plan: TrainingPlan, processes: int, outputs: Outputs, interval: float) -> RunSaver:
    """The run directory, made once the setup is known good (by rank 0 alone), with its
    config.json, and what keeps its files up to date."""
    out = plan.out or new_run_dir(Path(plan.options.data).stem)
    out.mkdir(parents=True, exist_ok=True)
    config = run_config(plan.options, plan.net, plan.classes, processes)
    outputs.write(out / "config.json", json_bytes(config))
    return RunSaver(plan, out, outputs, interval, processes)


def _tensorboard(logdir: Path, plan: TrainingPlan) -> TensorBoard:
    """The TensorBoard log of the run in `logdir`, with the gradient norms of the first batch
    of the training set."""
    fit_set, batch = plan.splits.fit, plan.options.batch_size
    probe = (fit_set.X[:batch], fit_set.y[:batch])
    try:
        return TensorBoard(logdir, net=plan.net, probe=probe, loss=LOSSES[plan.options.loss]())
    except ImportError as err:  # the tensorboard extra is not installed
        raise UsageError(str(err)) from err


def _fit(
    plan: TrainingPlan,
    loss: Loss,
    callbacks: list[Callback],
    group: Communicator,
    progress: bool,
    compiled: bool,
) -> None:
    """Train the plan's net from its start to its last epoch, with these callbacks after
    every epoch; `compiled` as fit takes it."""
    fit_set, val_set, _ = plan.splits
    fit(
        plan.net,
        fit_set.X,
        fit_set.y,
        loss=loss,
        optimizer=plan.optimizer,
        epochs=plan.options.epochs,
        batch_size=plan.options.batch_size,
        seed=plan.options.seed,
        validation=None if val_set is None else (val_set.X, val_set.y),
        progress=progress,
        callbacks=callbacks,
        initial_epoch=plan.start,
        history=plan.history,
        comm=group,
        early_stopping=plan.stopper,
        compiled=compiled,
    )


class _Epochs:
    """fit's callbacks after every epoch: stop at the first that is not finite, keep the
    run's files up to date through `saver` (None: a rank that writes nothing) and, when
    `logging`, say one line every `every` epochs."""

    def __init__(
        self, plan: TrainingPlan, saver: RunSaver | None, every: int, logging: bool
    ) -> None:
        self.plan, self.saver, self.every, self.logging = plan, saver, every, logging
        self.diverged: int | None = None  # the first epoch whose numbers were not finite

    def guard(self, epoch: int, record: dict[str, float]) -> bool:
        """Stop at the first epoch whose loss (or any other number) is not finite (the same
        epoch on every rank: their records hold the group's loss)."""
        if self.diverged is None and not all(math.isfinite(v) for v in record.values()):
            self.diverged = epoch
        return self.diverged is not None

    def save(self, epoch: int, record: dict[str, float]) -> None:
        """The epoch's line in history.csv, and its checkpoint unless it diverged (the last
        checkpoint stays the last finite net)."""
        if self.saver is not None:
            self.saver.epoch_done(epoch, record, good=self.diverged is None)

    def log(self, epoch: int, record: dict[str, float]) -> None:
        """Off a terminal (a log file, CI), one plain line every `every` epochs."""
        if self.logging and (epoch % self.every == 0 or epoch == self.plan.options.epochs):
            print(_log_line(epoch, self.plan.options.epochs, record), file=sys.stderr, flush=True)

    def log_stop(self) -> None:
        """The line of the epoch training stopped at (early stopping, divergence) when `log`
        did not say it."""
        last, epochs = len(self.plan.history), self.plan.options.epochs
        if self.logging and last > self.plan.start and last % self.every and last < epochs:
            print(_log_line(last, epochs, self.plan.history.last), file=sys.stderr)


def _log_line(epoch: int, epochs: int, record: dict[str, float]) -> str:
    """ "epoch 3/40: loss 0.2345, accuracy 0.9312, val_loss 0.2501, ..., lr 0.01 (0.05 s)"."""
    scores = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds"))
    return f"epoch {epoch}/{epochs}: {scores} ({record.get('seconds', 0.0):.2f} s)"
