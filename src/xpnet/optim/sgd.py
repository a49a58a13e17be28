"""Stochastic gradient descent, plain and with momentum."""

from __future__ import annotations

from typing import Any

from ..ops import Ops
from .base import Optimizer, in_range
from .schedules import Schedule

__all__ = ["SGD", "Momentum"]


class SGD(Optimizer, name="sgd"):
    """p <- p - lr * g; with momentum mu: v <- mu * v + g, p <- p - lr * v (PyTorch's form)."""

    suggested_lr = 0.5
    traceable = True  # update_rule reads no number on the host

    def __init__(
        self,
        lr: float = suggested_lr,
        momentum: float = 0.0,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm, schedule=schedule)
        self.momentum = in_range("momentum", momentum, 0.0, 1.0)
        self.slots = ("velocity",) if self.momentum else ()

    def update_rule(self, P: Any, G: Any, state: dict[str, Any], lr: Any, xp: Any, fns: Ops) -> Any:
        if not self.momentum:
            return fns.sgd_update(P, G, lr=lr, xp=xp)
        P, state["velocity"] = fns.momentum_update(
            P, G, state["velocity"], lr=lr, momentum=self.momentum, xp=xp
        )
        return P

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "momentum": self.momentum}


class Momentum(SGD, name="momentum"):
    """SGD with momentum 0.9 by default."""

    suggested_lr = 0.1
    slots = ("velocity",)

    def __init__(self, lr: float = suggested_lr, momentum: float = 0.9, **options: Any) -> None:
        """SGD's arguments (weight_decay, clip_norm, schedule)."""
        super().__init__(lr, momentum, **options)
