"""`xpnet train`: train an MLP, checkpointing every epoch, and save the run."""

from __future__ import annotations

import argparse
import math
import platform
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..checkpoint import FILENAME, load_checkpoint, save
from ..data import DOWNLOADED, load_dataset
from ..distributed import Communicator
from ..labels import describe_classes
from ..losses import LOSSES
from ..scoring import evaluate
from ..stopping import EarlyStopping
from ..train import History, fit
from . import parallel
from .config import (
    DECAY,
    LEARNING_RATES,
    _build_net,
    _check_memory,
    _check_same_data,
    _data_digest,
    _optimizer,
    _options,
    _resume_options,
    _sizes,
    _test_split,
    _validation_split,
)
from .errors import EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from .info import _version
from .runs import BEST, _draw, _metrics, _new_run_dir, _percent, _write_history, _write_json

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
        if options["weight_decay"] is None:
            options["weight_decay"] = DECAY.get(options["optimizer"], 0.0)
        out = args.out
        if out is not None and (out / FILENAME).exists():
            raise UsageError(
                f"{out} already holds a run; continue it with --resume {out} --epochs N, "
                "or choose another --out"
            )
    # a resumed run codes the labels as it did, by its checkpoint's classes (0..n-1 for runs
    # saved before they were stored); the digest check below sees any change of the labels
    # a dataset downloaded on first use is fetched by rank 0; the others read its cache
    fetched_by_lead = options["data"] in DOWNLOADED
    if fetched_by_lead and not lead:
        group.barrier()  # rank 0 has loaded (and so cached) the data
    data = load_dataset(
        options["data"], classes=None if ck is None else ck.classes, quiet=args.quiet
    )
    if fetched_by_lead and lead:
        group.barrier()
    if ck is None:
        options["data_sha256"] = _data_digest(data, options["data"])
    else:
        _check_same_data(data, options, args.resume, "resume")
    if ck is None:
        options["own_split"] = True
    train_set, test_set = _test_split(options, data)
    if ck is None:
        options["test_data_sha256"] = (
            None if options["test_data"] is None else _data_digest(test_set, options["test_data"])
        )
    else:
        _check_same_data(test_set, options, args.resume, "resume", key="test_data")
    fit_set, val_set = _validation_split(train_set, options["val_fraction"])
    if options["early_stopping"] is not None and val_set is None:
        raise UsageError(
            "--early-stopping watches the validation loss, and --val-fraction 0 leaves no "
            "validation set; give --val-fraction F (F > 0)"
        )
    if ck is None:
        n_eval = max(0 if val_set is None else len(val_set), len(test_set))
        _check_memory(_sizes(options, data), options, len(fit_set), options["dtype"], n_eval)
        net = _build_net(options, data, options["dtype"])
        optimizer = _optimizer(options)
        history, start = History(), 0
    else:
        net, history, start = ck.net, History(ck.history), ck.epoch
        assert ck.optimizer is not None  # _resume_options refuses a run without one
        optimizer = ck.optimizer
    stopper = _stopper(options, ck, args.resume)
    group = parallel.gpu_communicator(group, net.backend)
    threads = parallel.limit_threads()
    counts = f"{len(fit_set)} train / " + (
        "" if val_set is None else f"{len(val_set)} validation / "
    )
    say = print if lead else _silent
    say(
        f"{data.name}: {counts}{len(test_set)} test samples{_test_note(options, data, test_set)}"
        f"{_flattened(data)}{_classes_note(data)}; "
        f"{' -> '.join(map(str, net.sizes))} {net.hidden} MLP ({_count(net):,} parameters, "
        f"seed {options['seed']}), {options['loss']}, {options['optimizer']} lr "
        f"{options['lr']}{_training_note(options)}, batch {options['batch_size']}; "
        f"{net.backend.name} on {net.backend.device}, {net.dtype_name}"
        + (f"; resuming at epoch {start}" if start else "")
        + _group_note(group, threads)
    )
    group.barrier()  # every rank's setup is good (or a failed one has ended the job)
    if lead:  # made once the setup is known good, by rank 0 alone
        out = out or _new_run_dir(Path(options["data"]).stem)
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "config.json", _config(options, net, data.classes, group.size))
    diverged: list[int] = []
    saved = [start]  # the epoch the checkpoint holds

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
        metadata: dict[str, Any] = {"options": options}
        if stopper is not None:
            if stopper.best_epoch == epoch:  # the net holds the best weights so far
                save(
                    net,
                    out / BEST,
                    {"options": options},
                    epoch=epoch,
                    seed=options["seed"],
                    classes=data.classes,
                )
            metadata["early_stopping"] = stopper.state_dict()
        save(
            net,
            out,
            metadata,
            optimizer=optimizer,
            epoch=epoch,
            seed=options["seed"],
            history=history.records,
            classes=data.classes,
        )
        saved[0] = epoch

    every = args.log_every or 1
    logging = lead and not args.quiet and not sys.stderr.isatty()

    def log(epoch: int, record: dict[str, float]) -> None:
        """Off a terminal (a log file, CI), one plain line every `every` epochs."""
        if logging and (epoch % every == 0 or epoch == options["epochs"]):
            print(_log_line(epoch, options["epochs"], record), file=sys.stderr, flush=True)

    loss = LOSSES[options["loss"]]()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a NaN: guarded
        try:
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
                progress=sys.stderr.isatty() and not args.quiet,
                callbacks=[guard, checkpoint, log],  # in this order: guard first
                initial_epoch=start,
                history=history,
                comm=group,
                early_stopping=stopper,
            )
        except KeyboardInterrupt:
            splits = (fit_set, val_set, test_set)
            return _interrupted(history, saved[0], net, options, out, splits, group, stopper)
        last = len(history)
        if (
            logging
            and history.records
            and last > start
            and last % every
            and last < options["epochs"]
        ):
            print(_log_line(last, options["epochs"], history.last), file=sys.stderr)  # stopped
        if not lead or out is None:  # the other ranks are done: rank 0 writes the run
            group.barrier()
            return EXIT_DIVERGED if diverged else EXIT_OK
        test = None if diverged else evaluate(net, test_set.X, test_set.y, loss=loss)
    splits = (fit_set, val_set, test_set)
    status = _finish(history, test, net, options, out, diverged, splits, group.size)
    group.barrier()  # the others wait for the run to be written
    return status


def _log_line(epoch: int, epochs: int, record: dict[str, float]) -> str:
    """ "epoch 3/40: loss 0.2345, accuracy 0.9312, val_loss 0.2501, ..., lr 0.01 (0.05 s)"."""
    scores = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds"))
    return f"epoch {epoch}/{epochs}: {scores} ({record.get('seconds', 0.0):.2f} s)"


def _stopper(options: dict[str, Any], ck: Any, run: Path | None) -> EarlyStopping | None:
    """The run's early stopping (None when off); on resume, with the state and the best
    weights the run saved, so that it goes on as if never interrupted."""
    if options["early_stopping"] is None:
        return None
    stopper = EarlyStopping(patience=options["early_stopping"])
    state = None if ck is None else ck.metadata.get("early_stopping")
    if isinstance(state, dict):
        stopper.load_state_dict(state)
        if stopper.best_epoch is not None:
            assert run is not None
            best = load_checkpoint(run / BEST, ck.net.backend, ck.net.backend.device)
            if best.epoch != stopper.best_epoch:
                raise UsageError(
                    f"{run / BEST} holds epoch {best.epoch}, but the run's best epoch is "
                    f"{stopper.best_epoch}: the run was interrupted while saving; train a new "
                    "run"
                )
            stopper.best_parameters = best.net.parameter_buffer.flat_parameters()
    return stopper


def _count(net: Any) -> int:
    """The number of parameters of `net`."""
    return sum(math.prod(p.shape) for p in net.parameters().values())


def _training_note(options: dict[str, Any]) -> str:
    """The header's note on the options beyond the learning rate that are not at rest."""
    notes = []
    if options["weight_decay"]:
        notes.append(f"weight decay {options['weight_decay']:g}")
    if options["clip_norm"] is not None:
        notes.append(f"clip norm {options['clip_norm']:g}")
    if options["lr_schedule"] != "constant":
        notes.append(f"{options['lr_schedule']} schedule")
    if options["warmup_epochs"]:
        notes.append(f"{options['warmup_epochs']} warmup epochs")
    if options["early_stopping"] is not None:
        notes.append(f"early stopping after {options['early_stopping']}")
    return "".join(f", {n}" for n in notes)


def _config(options: dict[str, Any], net: Any, classes: Any, processes: int) -> dict[str, Any]:
    """config.json: every option of the run (data path and SHA-256 among them), the net, the
    labels its class codes stand for, the number of processes and the versions that trained
    it."""
    return {
        "options": options,
        "net": net.config(),
        "classes": classes.tolist(),
        "parameters": _count(net),
        "processes": processes,
        "versions": {
            "xpnet": _version("xpnet"),
            "python": platform.python_version(),
            "numpy": _version("numpy"),
            **{package: _version(package) for package in net.backend.library.distributions},
        },
    }


def _interrupted(
    history: History,
    saved: int,
    net: Any,
    options: dict[str, Any],
    out: Path | None,
    splits: tuple[Any, Any, Any],
    group: Communicator,
    stopper: EarlyStopping | None,
) -> int:
    """Ctrl-C: write history.csv, metrics.json (marked interrupted) and the curves for the
    epochs the checkpoint holds, say the exact command that continues the run, exit 130."""
    if group.rank != 0 or out is None:
        return EXIT_INTERRUPTED
    if saved == 0:
        print(
            "xpnet train: interrupted in epoch 1, before any epoch was saved; nothing to resume",
            file=sys.stderr,
        )
    else:
        kept = History(history.records[:saved])
        fit_set, val_set, test_set = splits
        n_val = 0 if val_set is None else len(val_set)
        metrics = _metrics(kept, None, net, options, len(fit_set), n_val, len(test_set))
        metrics.update(
            diverged=False,
            interrupted=True,
            processes=group.size,
            best_epoch=None if stopper is None else stopper.best_epoch,
            stopped_early=False,
        )
        _write_json(out / "metrics.json", metrics)
        _write_history(out / "history.csv", kept)
        _draw(plots.plot_curves, kept.records, out / "curves.png", quiet=True)
        launcher = f"mpiexec -n {group.size} " if group.size > 1 else ""
        command = (
            f"{launcher}xpnet train --resume {shlex.quote(str(out))} --epochs {options['epochs']}"
        )
        print(
            f"xpnet train: interrupted in epoch {saved + 1}; the checkpoint in {out} holds "
            f"epoch {saved} (history.csv and metrics.json say how it went); continue with: "
            f"{command}",
            file=sys.stderr,
        )
    parallel.end_job(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def _test_note(options: dict[str, Any], data: Any, test_set: Any) -> str:
    """The header's note on where the test samples come from, when not from --data."""
    if options["test_data"] is not None:
        return f" (from {test_set.name})"
    if options["own_split"] and data.own_test is not None:
        return f" (its own test part, {len(test_set)} samples after the first {data.own_test})"
    return ""


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
    metrics["interrupted"] = False
    metrics["best_epoch"] = history.best_epoch
    metrics["stopped_early"] = not diverged and len(history) < options["epochs"]
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
    files = [FILENAME] + ([BEST] if (out / BEST).exists() else [])
    files += ["config.json", "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
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


def _classes_note(data: Any) -> str:
    """The header's note on labels other than 0..k-1, which are coded as their sorted order."""
    if data.classes.tolist() == list(range(data.n_classes)):
        return ""
    return f" ({data.n_classes} classes: {describe_classes(data.classes)})"


def _flattened(data: Any) -> str:
    """The header's note that X had more than 2 dimensions and was flattened."""
    shape = data.stored_shape
    if shape is None:
        return ""
    per_sample = " x ".join(map(str, shape[1:]))
    return (
        f" (X stored as {shape}: each {per_sample} sample flattened to {data.n_features} features)"
    )
