"""How a run ended: the files `xpnet train` writes once it stops (metrics.json, history.csv,
the curves) and the lines it says, for a finished, a diverged and an interrupted run."""

from __future__ import annotations

import contextlib
import math
import shlex
import sys
from pathlib import Path
from typing import Any

from .. import plots
from ..checkpoint import FILENAME
from ..distributed import Communicator
from ..train import History
from . import parallel
from .errors import EXIT_DIVERGED, EXIT_OK, EXIT_TERMINATED
from .hints import explosion_hint
from .options import TrainOptions
from .plan import TrainingPlan
from .runs import BEST, draw, percent
from .saving import RunSaver

__all__ = ["finish", "interrupted"]


def finish(
    plan: TrainingPlan,
    test: dict[str, float] | None,
    saver: RunSaver,
    diverged: int | None,
    wall_seconds: float,
) -> int:
    """Write the checkpoint, metrics.json, history.csv and the curves, and say how the run
    went (`diverged`: the first epoch whose loss was not finite; `wall_seconds`: training
    with its evaluation and saving)."""
    saver.write()
    history, out = plan.history, saver.out
    saver.history.sync(history.records)
    metrics = saver.write_metrics(
        test, finished=True, interrupted=False, diverged=diverged is not None
    )
    if diverged is not None:
        return _diverged(diverged, history, plan.options, out)
    drawn = draw(plots.plot_curves, history.records, out / "curves.png", saver.outputs)
    hint = explosion_hint(history, plan.options, 0 if plan.classes is None else len(plan.classes))
    if hint:
        print(f"xpnet train: warning: {hint}", file=sys.stderr)
    score = (
        f"R² {metrics['test_r2']:.4f}"
        if metrics["test_r2"] is not None
        else f"accuracy {percent(metrics['test_accuracy'])}"
    )
    print(
        f"test {score} (loss {metrics['test_loss']:.4g}) "
        f"after {_epochs_note(history, metrics)}, {metrics['seconds']:.1f} s of training "
        f"({_wall_note(plan, wall_seconds)}), {metrics['backend']} on "
        f"{metrics['device']}"
    )
    files = [FILENAME] + ([BEST] if (out / BEST).exists() else [])
    files += ["config.json", "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
    print(f"saved in {out}: {', '.join(files)}")
    return EXIT_OK


def _wall_note(plan: TrainingPlan, wall_seconds: float) -> str:
    """The wall time of this command: of all epochs, or of those a resumed run added (the
    training time before it counts every epoch)."""
    if plan.start == 0:
        return f"{wall_seconds:.1f} s with evaluation and saving"
    return (
        f"{wall_seconds:.1f} s for epochs {plan.start + 1}-{len(plan.history)} with "
        "evaluation and saving"
    )


def _epochs_note(history: History, metrics: dict[str, Any]) -> str:
    """ "40 epochs", or after early stopping which epoch's weights were kept."""
    best = history.best_epoch
    if metrics["stopped_early"] and best is not None:
        return f"{metrics['epochs']} epochs (stopped early; the weights of epoch {best})"
    return f"{metrics['epochs']} epochs"


def _diverged(epoch: int, history: History, options: TrainOptions, out: Path) -> int:
    """The one line for a run whose loss stopped being finite, and exit status 3."""
    record = history.records[-1]
    bad = ", ".join(f"{k} {v}" for k, v in record.items() if not math.isfinite(v))
    saved = (
        f"the checkpoint in {out} holds epoch {epoch - 1}"
        if epoch > 1
        else "no checkpoint was saved"
    )
    lr = options.lr
    print(
        f"xpnet train: error: training diverged in epoch {epoch} ({bad}): the learning rate "
        f"{lr:g} is likely too high for {options.optimizer}; try a lower --lr such as "
        f"{lr / 10:g} ({saved}; metrics.json and history.csv say how it went)",
        file=sys.stderr,
    )
    return EXIT_DIVERGED


def interrupted(
    plan: TrainingPlan, saver: RunSaver | None, group: Communicator, status: int
) -> int:
    """Ctrl-C or SIGTERM: save the last whole epoch (the checkpoint, history.csv,
    metrics.json marked interrupted, the curves), say the exact command that continues the
    run and return `status` (130 or 143; `saver` None: a rank that writes nothing)."""
    if saver is None:
        return status
    which = "SIGTERM" if status == EXIT_TERMINATED else "Ctrl-C"
    saver.write()
    out, saved = saver.out, saver.saved
    if saved == 0:
        saver.outputs.remove_written()  # a new run with nothing to resume leaves nothing
        if plan.out is None:  # the folder made for it under runs/
            with contextlib.suppress(OSError):
                out.rmdir()
        print(
            f"xpnet train: interrupted ({which}) in epoch 1, before any epoch was saved; "
            "nothing to resume, nothing kept",
            file=sys.stderr,
        )
    elif saved == plan.options.epochs:
        saver.write_metrics(None, finished=False, interrupted=True, diverged=False)
        print(
            f"xpnet train: interrupted ({which}) after the last epoch, before the test "
            f"scores; the checkpoint in {out} holds all {saved} epochs: score it with xpnet "
            f"evaluate {shlex.quote(str(out))}",
            file=sys.stderr,
        )
    else:
        kept = History(plan.history.records[:saved])
        saver.history.sync(kept.records)
        saver.write_metrics(None, finished=False, interrupted=True, diverged=False)
        draw(plots.plot_curves, kept.records, out / "curves.png", saver.outputs, quiet=True)
        launcher = f"mpiexec -n {group.size} " if group.size > 1 else ""
        command = (
            f"{launcher}xpnet train --resume {shlex.quote(str(out))} --epochs {plan.options.epochs}"
        )
        print(
            f"xpnet train: interrupted ({which}) in epoch {saved + 1}; the checkpoint in {out} "
            f"holds epoch {saved} (history.csv and metrics.json say how it went); continue "
            f"with: {command}",
            file=sys.stderr,
        )
    parallel.end_job(status)
    return status
