"""The files of a run while it trains: history.csv line by line as epochs finish, and the
checkpoint (with best.safetensors under early stopping) and metrics.json written on a time
interval, at the end and on a signal.

After every good epoch the checkpoint is encoded in memory (cheap next to an epoch; no fsync,
and the history is not in its header but beside it, in history.csv); it is written to disk
when `interval` seconds have passed since the last write. So an interrupted run (Ctrl-C,
SIGTERM) saves its last whole epoch, and a killed one (SIGKILL) loses at most `interval`
seconds of training."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..checkpoint import FILENAME, encode
from .historylog import HistoryLog
from .outputs import Outputs
from .plan import TrainingPlan
from .runs import BEST, json_bytes, run_metrics

__all__ = ["RunSaver"]


class RunSaver:
    """Keeps the run in `out` up to date as `plan` trains (`processes`: the group's size,
    recorded in metrics.json)."""

    def __init__(
        self, plan: TrainingPlan, out: Path, outputs: Outputs, interval: float, processes: int
    ) -> None:
        self.plan, self.out, self.outputs = plan, out, outputs
        self.interval, self.processes = interval, processes
        self.history = HistoryLog(out / "history.csv", outputs)
        self.held = self.saved = plan.start  # the epoch in memory, the epoch on disk
        self.snapshot: bytes | None = None
        self.best: bytes | None = None  # best.safetensors not yet written
        self.last_write = time.monotonic()

    def epoch_done(self, epoch: int, record: dict[str, float], good: bool) -> None:
        """After every epoch: its line in history.csv; when `good` (finite), the checkpoint
        of this epoch kept in memory, and written when the interval has passed."""
        self.history.sync(self.plan.history.records)
        if not good:
            return
        plan = self.plan
        run_facts = {
            "options": plan.options.to_dict(),
            **({} if plan.scaling is None else plan.scaling.to_metadata()),
        }
        metadata: dict[str, Any] = dict(run_facts)
        if plan.stopper is not None:
            if plan.stopper.best_epoch == epoch:  # the net holds the best weights so far
                self.best = encode(
                    plan.net,
                    run_facts,
                    epoch=epoch,
                    seed=plan.options.seed,
                    classes=plan.classes,
                )
            metadata["early_stopping"] = plan.stopper.state_dict()
        self.snapshot = encode(
            plan.net,
            metadata,
            optimizer=plan.optimizer,
            epoch=epoch,
            seed=plan.options.seed,
            classes=plan.classes,
        )
        self.held = epoch
        if time.monotonic() - self.last_write >= self.interval:
            self.write()

    def write(self) -> None:
        """Write what is held: best.safetensors first (resuming from the older checkpoint
        then trains to that best epoch again), then the checkpoint, then metrics.json."""
        if self.best is not None:
            self.outputs.write(self.out / BEST, self.best)
            self.best = None
        if self.snapshot is not None and self.saved != self.held:
            self.outputs.write(self.out / FILENAME, self.snapshot)
            self.saved = self.held
            self.write_metrics(None, finished=False, interrupted=False, diverged=False)
        self.last_write = time.monotonic()

    def write_metrics(
        self, test: dict[str, float] | None, *, finished: bool, interrupted: bool, diverged: bool
    ) -> dict[str, Any]:
        """metrics.json of the epochs the checkpoint holds (all of them once `finished`);
        returns what it wrote."""
        plan = self.plan
        history = plan.history
        if not finished or interrupted:
            history = type(history)(history.records[: self.saved])
        metrics = run_metrics(history, test, plan.net, plan.options, plan.splits)
        metrics.update(
            processes=self.processes,
            finished=finished,
            interrupted=interrupted,
            diverged=diverged,
            best_epoch=None if plan.stopper is None else plan.stopper.best_epoch,
            stopped_early=finished and not diverged and len(history) < plan.options.epochs,
        )
        self.outputs.write(self.out / "metrics.json", json_bytes(metrics))
        return metrics
