"""Early stopping: end training when a monitored number (the validation loss by default) has
stopped improving, and give the net back its best parameters.

An `EarlyStopping` passed to `fit` sees each epoch's record; it keeps a device copy of the
flat parameters of the best epoch (no host transfer) and restores them when training ends.
Its counters go through `state_dict`, and its best parameters through `best_parameters`, so
a checkpointed run can resume it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .sequential import Sequential

__all__ = ["EarlyStopping"]

Array = Any


class EarlyStopping:
    """Stop after `patience` epochs in which `monitor` (a record key: "val_loss", or e.g.
    "loss") did not fall below the best value by more than `min_delta`; with `restore_best`,
    the net ends with the parameters of its best epoch. A non-finite value never counts as
    an improvement."""

    def __init__(
        self,
        patience: int = 5,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not (isinstance(min_delta, int | float) and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.patience, self.monitor = patience, monitor
        self.min_delta, self.restore_best = float(min_delta), bool(restore_best)
        self.best: float | None = None
        self.best_epoch: int | None = None  # 1-based, as in the records
        self.wait = 0
        self.best_parameters: Array | None = None  # flat, on the net's device

    def check(self, record: Mapping[str, float]) -> None:
        """Raise ValueError unless the records carry the monitored key."""
        if self.monitor not in record:
            raise ValueError(
                f"early stopping watches {self.monitor!r}, which the training records lack "
                f"(they have {sorted(record)}); give validation data or monitor another key"
            )

    def update(self, record: Mapping[str, float], net: Sequential) -> bool:
        """Take the record of the epoch that ended; True when training should stop."""
        self.check(record)
        value = record[self.monitor]
        if math.isfinite(value) and (self.best is None or value < self.best - self.min_delta):
            self.best, self.best_epoch, self.wait = value, int(record["epoch"]), 0
            if self.restore_best:
                P = net.parameter_buffer.flat_parameters()
                self.best_parameters = net.backend.xp.asarray(P, copy=True)
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, net: Sequential) -> None:
        """Give `net` the parameters of the best epoch (when they were kept)."""
        if self.restore_best and self.best_parameters is not None:
            net.parameter_buffer.store_flat_parameters(self.best_parameters)

    def state_dict(self) -> dict[str, Any]:
        """The counters (JSON values); the best parameters are `best_parameters`."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.best_epoch = None if state.get("best_epoch") is None else int(state["best_epoch"])
        self.wait = int(state.get("wait", 0))

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, "
            f"min_delta={self.min_delta}, restore_best={self.restore_best})"
        )
