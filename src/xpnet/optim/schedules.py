"""Learning-rate schedules: the factor on an optimizer's `lr` for each epoch.

An optimizer owns its schedule: `fit` tells the optimizer when an epoch begins (the schedule
gives that epoch's factor) and ends (a schedule that watches a metric, `Plateau`, sees the
epoch's record), as scikit-learn's optimizers do in `iteration_ends`. A schedule saves its
settings with `config()` and what it has learned with `state_dict()`, so a resumed run
continues it exactly."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ..registry import lookup, register

__all__ = ["SCHEDULES", "Constant", "Cosine", "Plateau", "Schedule", "Step", "schedule_from_config"]


SCHEDULES: dict[str, type[Schedule]] = {}  # name -> class, filled by subclassing


class Schedule:
    """Factor 1 for every epoch, after `warmup_epochs` epochs of linear warmup (factor
    (e + 1) / (warmup_epochs + 1) in epoch e); subclasses shape the factor after warmup and
    name themselves (`class Step(Schedule, name="step")`), which registers them for
    checkpoints."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register(SCHEDULES, cls, name, "learning-rate schedule")

    def __init__(self, warmup_epochs: int = 0) -> None:
        if not (isinstance(warmup_epochs, int) and warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs

    def factor(self, epoch: int) -> float:
        """The factor on the base learning rate in epoch `epoch` (0, 1, ...)."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return self._after_warmup(epoch - self.warmup_epochs)

    def _after_warmup(self, epoch: int) -> float:
        return 1.0

    def observe(self, record: Mapping[str, float]) -> None:
        """See the record of an epoch that has ended (loss, val_loss, ...)."""

    def config(self) -> dict[str, Any]:
        """{"name": ..., <constructor arguments>}: what rebuilds this schedule."""
        return {"name": self.name, **self._arguments()}

    def _arguments(self) -> dict[str, Any]:
        return {"warmup_epochs": self.warmup_epochs}

    def state_dict(self) -> dict[str, Any]:
        """What the schedule has learned from the records so far (JSON values)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule, name="constant"):
    """The base learning rate throughout (after any warmup)."""


class Step(Schedule, name="step"):
    """lr * gamma ** (epoch // every): divided by 1 / gamma every `every` epochs."""

    def __init__(self, every: int = 10, gamma: float = 0.1, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs)
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.every, self.gamma = every, float(gamma)

    def _after_warmup(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.every)

    def _arguments(self) -> dict[str, Any]:
        return {"every": self.every, "gamma": self.gamma, **super()._arguments()}


class Cosine(Schedule, name="cosine"):
    """Cosine annealing from lr to lr * min_factor over `epochs` epochs (then min_factor)."""

    def __init__(self, epochs: int, min_factor: float = 0.0, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs)
        if not (isinstance(epochs, int) and epochs >= 1):
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        if not 0.0 <= min_factor <= 1.0:
            raise ValueError(f"min_factor must be in [0, 1], got {min_factor!r}")
        self.epochs, self.min_factor = epochs, float(min_factor)

    def _after_warmup(self, epoch: int) -> float:
        progress = min(epoch / self.epochs, 1.0)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )

    def _arguments(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "min_factor": self.min_factor, **super()._arguments()}


class Plateau(Schedule, name="plateau"):
    """Multiply the factor by `gamma` when `monitor` (a record key: "val_loss", or "loss" when
    there is no validation) has not improved by more than `threshold` (relative) for
    `patience` epochs in a row, never below `min_factor` (the floor: PyTorch's min_lr over
    the base rate). A `monitor` the records lack (a typo such as "acc") raises at the first
    epoch's end, instead of never firing."""

    def __init__(
        self,
        patience: int = 5,
        gamma: float = 0.1,
        monitor: str = "val_loss",
        threshold: float = 1e-4,
        warmup_epochs: int = 0,
        min_factor: float = 0.0,
    ) -> None:
        super().__init__(warmup_epochs)
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma!r}")
        if not isinstance(monitor, str):
            raise ValueError(f"monitor must be a record key such as 'val_loss', got {monitor!r}")
        if not 0.0 <= min_factor <= 1.0:
            raise ValueError(f"min_factor must be in [0, 1], got {min_factor!r}")
        self.patience, self.gamma = patience, float(gamma)
        self.monitor, self.threshold = monitor, float(threshold)
        self.min_factor = float(min_factor)
        self.best: float | None = None
        self.bad_epochs = 0
        self.scale = 1.0

    def _after_warmup(self, epoch: int) -> float:
        return self.scale

    def observe(self, record: Mapping[str, float]) -> None:
        key = self.monitor if self.monitor in record or self.monitor != "val_loss" else "loss"
        if key not in record:
            raise ValueError(
                f"the plateau schedule watches {self.monitor!r}, which the training records "
                f"lack (they have {sorted(record)}); monitor one of those"
            )
        value = record[key]
        if not math.isfinite(value):
            return
        if self.best is None or value < self.best * (1.0 - self.threshold):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.scale = max(self.scale * self.gamma, self.min_factor)
            self.bad_epochs = 0

    def _arguments(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "gamma": self.gamma,
            "monitor": self.monitor,
            "threshold": self.threshold,
            "min_factor": self.min_factor,
            **super()._arguments(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "scale": self.scale}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.bad_epochs = int(state.get("bad_epochs", 0))
        self.scale = float(state.get("scale", 1.0))


def schedule_from_config(config: Mapping[str, Any]) -> Schedule:
    """The schedule `Schedule.config()` describes."""
    arguments = dict(config)
    cls = lookup(SCHEDULES, arguments.pop("name", None), "learning-rate schedule")
    return cls(**arguments)
