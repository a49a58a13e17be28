"""`xpnet train`: train an MLP, checkpointing every epoch, and save the run."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import save
from ..distributed import Communicator
from ..losses import LOSSES, Loss
from ..scoring import evaluate
from ..train import fit
from . import parallel
from .announce import header
from .errors import EXIT_DIVERGED, EXIT_OK
from .plan import TrainingPlan
from .report import finish, interrupted
from .runs import BEST, new_run_dir, run_config, write_json

__all__ = ["cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    """Train and save a run: plan it (new or resumed), announce it, fit, finish. Under a
    launcher (`mpiexec -n N xpnet train ...`) every rank runs this with the same data, and
    trains its shard of each batch (`fit(comm=...)`); rank 0 alone prints and writes the run
    directory."""
    group = parallel.join()
    lead = group.rank == 0
    plan = (
        TrainingPlan.new(args, group) if args.resume is None else TrainingPlan.resume(args, group)
    )
    group = parallel.gpu_communicator(group, plan.net.backend)
    threads = parallel.limit_threads()
    if lead:
        print(header(plan, group, threads))
    group.barrier()  # every rank's setup is good (or a failed one has ended the job)
    out = _run_dir(plan, group.size) if lead else None
    logging = lead and not args.quiet and not sys.stderr.isatty()
    epochs = _Epochs(plan, out, args.log_every or 1, logging)
    loss = LOSSES[plan.options.loss]()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a NaN: guarded
        try:
            _fit(plan, loss, epochs, group, progress=sys.stderr.isatty() and not args.quiet)
        except KeyboardInterrupt:
            return interrupted(plan, epochs.saved, out, group)
        epochs.log_stop()
        if out is None:  # the other ranks are done: rank 0 writes the run
            group.barrier()
            return EXIT_OK if epochs.diverged is None else EXIT_DIVERGED
        test_set = plan.splits.test
        test = None if epochs.diverged else evaluate(plan.net, test_set.X, test_set.y, loss=loss)
    status = finish(plan, test, out, epochs.diverged, group.size)
    group.barrier()  # the others wait for the run to be written
    return status


def _run_dir(plan: TrainingPlan, processes: int) -> Path:
    """The run directory, made once the setup is known good (by rank 0 alone), with its
    config.json."""
    out = plan.out or new_run_dir(Path(plan.options.data).stem)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", run_config(plan.options, plan.net, plan.classes, processes))
    return out


def _fit(
    plan: TrainingPlan, loss: Loss, epochs: _Epochs, group: Communicator, progress: bool
) -> None:
    """Train the plan's net from its start to its last epoch, with `epochs`' callbacks."""
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
        callbacks=[epochs.guard, epochs.checkpoint, epochs.log],  # in this order: guard first
        initial_epoch=plan.start,
        history=plan.history,
        comm=group,
        early_stopping=plan.stopper,
    )


class _Epochs:
    """fit's callbacks after every epoch: stop at the first that is not finite, checkpoint
    the good ones into `out` (None: a rank that writes nothing) and, when `logging`, say one
    line every `every` epochs."""

    def __init__(self, plan: TrainingPlan, out: Path | None, every: int, logging: bool) -> None:
        self.plan, self.out, self.every, self.logging = plan, out, every, logging
        self.diverged: int | None = None  # the first epoch whose numbers were not finite
        self.saved = plan.start  # the epoch the checkpoint holds

    def guard(self, epoch: int, record: dict[str, float]) -> bool:
        """Stop at the first epoch whose loss (or any other number) is not finite (the same
        epoch on every rank: their records hold the group's loss)."""
        if self.diverged is None and not all(math.isfinite(v) for v in record.values()):
            self.diverged = epoch
        return self.diverged is not None

    def checkpoint(self, epoch: int, record: dict[str, float]) -> None:
        """After every good epoch, so an interrupted run can be resumed (a diverged epoch is
        not saved: the last checkpoint stays the last finite net)."""
        if self.diverged is not None or self.out is None:
            return
        plan = self.plan
        options = plan.options.to_dict()
        metadata: dict[str, Any] = {"options": options}
        if plan.stopper is not None:
            if plan.stopper.best_epoch == epoch:  # the net holds the best weights so far
                save(
                    plan.net,
                    self.out / BEST,
                    {"options": options},
                    epoch=epoch,
                    seed=plan.options.seed,
                    classes=plan.classes,
                )
            metadata["early_stopping"] = plan.stopper.state_dict()
        save(
            plan.net,
            self.out,
            metadata,
            optimizer=plan.optimizer,
            epoch=epoch,
            seed=plan.options.seed,
            history=plan.history.records,
            classes=plan.classes,
        )
        self.saved = epoch

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
