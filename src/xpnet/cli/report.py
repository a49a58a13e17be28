"""How a run ended: the files `xpnet train` writes once it stops (metrics.json, history.csv,
the curves) and the lines it says, for a finished, a diverged and an interrupted run."""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

from .. import plots
from ..checkpoint import FILENAME
from ..distributed import Communicator
from ..train import History
from . import parallel
from .errors import EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK
from .options import TrainOptions
from .plan import TrainingPlan
from .runs import BEST, draw, percent, run_metrics, write_history, write_json

__all__ = ["finish", "interrupted"]


def finish(
    plan: TrainingPlan,
    test: dict[str, float] | None,
    out: Path,
    diverged: int | None,
    processes: int,
) -> int:
    """Write metrics.json, history.csv and the curves, and say how the run went (`diverged`:
    the first epoch whose loss was not finite)."""
    history = plan.history
    metrics = run_metrics(history, test, plan.net, plan.options, plan.splits)
    metrics["processes"] = processes
    metrics["interrupted"] = False
    metrics["best_epoch"] = history.best_epoch
    metrics["stopped_early"] = diverged is None and len(history) < plan.options.epochs
    write_json(out / "metrics.json", metrics)
    write_history(out / "history.csv", history)
    if diverged is not None:
        return _diverged(diverged, history, plan.options, out)
    drawn = draw(plots.plot_curves, history.records, out / "curves.png")
    print(
        f"test accuracy {percent(metrics['test_accuracy'])} (loss {metrics['test_loss']:.4g}) "
        f"after {metrics['epochs']} epochs, {metrics['seconds']:.1f} s of training, "
        f"{metrics['backend']} on {metrics['device']}"
    )
    files = [FILENAME] + ([BEST] if (out / BEST).exists() else [])
    files += ["config.json", "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
    print(f"saved in {out}: {', '.join(files)}")
    return EXIT_OK


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


def interrupted(plan: TrainingPlan, saved: int, out: Path | None, group: Communicator) -> int:
    """Ctrl-C: write history.csv, metrics.json (marked interrupted) and the curves for the
    `saved` epochs the checkpoint holds, say the exact command that continues the run, exit
    130 (`out` None: a rank that writes nothing)."""
    if out is None:
        return EXIT_INTERRUPTED
    if saved == 0:
        print(
            "xpnet train: interrupted in epoch 1, before any epoch was saved; nothing to resume",
            file=sys.stderr,
        )
    else:
        kept = History(plan.history.records[:saved])
        metrics = run_metrics(kept, None, plan.net, plan.options, plan.splits)
        metrics.update(
            diverged=False,
            interrupted=True,
            processes=group.size,
            best_epoch=None if plan.stopper is None else plan.stopper.best_epoch,
            stopped_early=False,
        )
        write_json(out / "metrics.json", metrics)
        write_history(out / "history.csv", kept)
        draw(plots.plot_curves, kept.records, out / "curves.png", quiet=True)
        launcher = f"mpiexec -n {group.size} " if group.size > 1 else ""
        command = (
            f"{launcher}xpnet train --resume {shlex.quote(str(out))} --epochs {plan.options.epochs}"
        )
        print(
            f"xpnet train: interrupted in epoch {saved + 1}; the checkpoint in {out} holds "
            f"epoch {saved} (history.csv and metrics.json say how it went); continue with: "
            f"{command}",
            file=sys.stderr,
        )
    parallel.end_job(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED
