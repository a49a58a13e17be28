"""`xpnet train`: train an MLP, checkpointing every epoch, and save the run."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..checkpoint import FILENAME, save
from ..data import load_dataset, train_test_split
from ..distributed import Communicator
from ..losses import LOSSES
from ..optim import OPTIMIZERS
from ..scoring import evaluate
from ..train import History, fit
from . import parallel
from .config import (
    LEARNING_RATES,
    SPLIT_SEED,
    TEST_FRACTION,
    _build_net,
    _check_memory,
    _check_same_data,
    _data_digest,
    _options,
    _resume_options,
    _sizes,
    _validation_split,
)
from .errors import EXIT_DIVERGED, EXIT_OK, UsageError
from .runs import _draw, _metrics, _new_run_dir, _percent, _write_history, _write_json

__all__ = ["cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    """Train and save a run. Under a launcher (`mpiexec -n N xpnet train ...`) every rank runs
    this with the same data, and trains its shard of each batch (`fit(comm=...)`); rank 0
    alone prints and writes the run directory."""
    group = parallel.join()
    lead = group.rank == 0
    if args.resume is not None:
        options, ck = _resume_options(args)
        out: Path | None = args.resume
    else:
        options, ck = _options(args), None
        options["lr"] = options["lr"] or LEARNING_RATES[options["optimizer"]]
        out = args.out
        if out is not None and (out / FILENAME).exists():
            raise UsageError(
                f"{out} already holds a run; continue it with --resume {out} --epochs N, "
                "or choose another --out"
            )
    data = load_dataset(options["data"])
    if ck is None:
        options["data_sha256"] = _data_digest(data, options["data"])
    else:
        _check_same_data(data, options, args.resume, "resume")
    train_set, test_set = train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    fit_set, val_set = _validation_split(train_set, options["val_fraction"])
    if ck is None:
        n_eval = max(0 if val_set is None else len(val_set), len(test_set))
        _check_memory(_sizes(options, data), options, len(fit_set), options["dtype"], n_eval)
        net = _build_net(options, data, options["dtype"])
        optimizer = OPTIMIZERS[options["optimizer"]](lr=options["lr"])
        history, start = History(), 0
    else:
        net, history, start = ck.net, History(ck.history), ck.epoch
        assert ck.optimizer is not None  # _resume_options refuses a run without one
        optimizer = ck.optimizer
    group = parallel.gpu_communicator(group, net.backend.name)
    threads = parallel.limit_threads()
    counts = f"{len(fit_set)} train / " + (
        "" if val_set is None else f"{len(val_set)} validation / "
    )
    say = print if lead else _silent
    say(
        f"{data.name}: {counts}{len(test_set)} test samples{_flattened(data)}; "
        f"{' -> '.join(map(str, net.sizes))} {net.hidden} MLP, {options['loss']}, "
        f"{options['optimizer']} lr {options['lr']}, batch {options['batch_size']}; "
        f"{net.backend.name} on {net.backend.device}, {net.dtype_name}"
        + (f"; resuming at epoch {start}" if start else "")
        + _group_note(group, threads)
    )
    group.barrier()  # every rank's setup is good (or a failed one has ended the job)
    if lead:  # made once the setup is known good, by rank 0 alone
        out = out or _new_run_dir(Path(options["data"]).stem)
        out.mkdir(parents=True, exist_ok=True)
    diverged: list[int] = []

    def guard(epoch: int, record: dict[str, float]) -> bool:
        """Stop at the first epoch whose loss (or any other number) is not finite (the same
        epoch on every rank: their records hold the group's loss)."""
        if not all(math.isfinite(v) for v in record.values()):
            diverged.append(epoch)
        return bool(diverged)

    def checkpoint(epoch: int, record: dict[str, float]) -> None:
        """After every good epoch, so an interrupted run can be resumed (a diverged epoch is
        not saved: the last checkpoint stays the last finite net); by rank 0 alone."""
        if diverged or out is None or not lead:
            return
        save(
            net,
            out,
            {"options": options},
            optimizer=optimizer,
            epoch=epoch,
            seed=options["seed"],
            history=history.records,
        )

    loss = LOSSES[options["loss"]]()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a NaN: guarded
        fit(
            net,
            fit_set.X,
            fit_set.y,
            loss=loss,
            optimizer=optimizer,
            epochs=options["epochs"],
            batch_size=options["batch_size"],
            seed=options["seed"],
            validation=None if val_set is None else (val_set.X, val_set.y),
            progress=sys.stderr.isatty(),
            callbacks=[guard, checkpoint],  # in this order: guard first
            initial_epoch=start,
            history=history,
            comm=group,
        )
        if not lead or out is None:  # the other ranks are done: rank 0 writes the run
            group.barrier()
            return EXIT_DIVERGED if diverged else EXIT_OK
        test = None if diverged else evaluate(net, test_set.X, test_set.y, loss=loss)
    splits = (fit_set, val_set, test_set)
    status = _finish(history, test, net, options, out, diverged, splits, group.size)
    group.barrier()  # the others wait for the run to be written
    return status


def _silent(*args: Any, **kwargs: Any) -> None:
    """print for the ranks that do not print."""


def _group_note(group: Communicator, threads: int | None) -> str:
    """The header's note on data-parallel training."""
    if group.size == 1:
        return ""
    limit = f", {threads} thread{'s' * (threads != 1)} each" if threads else ""
    return f"; data-parallel on {group.size} processes ({type(group).__name__}{limit})"


def _finish(
    history: History,
    test: dict[str, float] | None,
    net: Any,
    options: dict[str, Any],
    out: Path,
    diverged: list[int],
    splits: tuple[Any, Any, Any],
    processes: int,
) -> int:
    """Write metrics.json, history.csv and the curves, and say how the run went."""
    fit_set, val_set, test_set = splits
    n_val = 0 if val_set is None else len(val_set)
    metrics = _metrics(history, test, net, options, len(fit_set), n_val, len(test_set))
    metrics["processes"] = processes
    _write_json(out / "metrics.json", metrics)
    _write_history(out / "history.csv", history)
    if diverged:
        return _diverged(diverged[0], history, options, out)
    drawn = _draw(plots.plot_curves, history.records, out / "curves.png")
    print(
        f"test accuracy {_percent(metrics['test_accuracy'])} (loss {metrics['test_loss']:.4g}) "
        f"after {metrics['epochs']} epochs, {metrics['seconds']:.1f} s of training, "
        f"{metrics['backend']} on {metrics['device']}"
    )
    files = [FILENAME, "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
    print(f"saved in {out}: {', '.join(files)}")
    return EXIT_OK


def _diverged(epoch: int, history: History, options: dict[str, Any], out: Path) -> int:
    """The one line for a run whose loss stopped being finite, and exit status 3."""
    record = history.records[-1]
    bad = ", ".join(f"{k} {v}" for k, v in record.items() if not math.isfinite(v))
    saved = (
        f"the checkpoint in {out} holds epoch {epoch - 1}"
        if epoch > 1
        else "no checkpoint was saved"
    )
    lr = options["lr"]
    print(
        f"xpnet train: error: training diverged in epoch {epoch} ({bad}): the learning rate "
        f"{lr:g} is likely too high for {options['optimizer']}; try a lower --lr such as "
        f"{lr / 10:g} ({saved}; metrics.json and history.csv say how it went)",
        file=sys.stderr,
    )
    return EXIT_DIVERGED


def _flattened(data: Any) -> str:
    """The header's note that X had more than 2 dimensions and was flattened."""
    shape = data.stored_shape
    if shape is None:
        return ""
    per_sample = " x ".join(map(str, shape[1:]))
    return (
        f" (X stored as {shape}: each {per_sample} sample flattened to {data.n_features} features)"
    )
