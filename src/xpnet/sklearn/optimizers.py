"""scikit-learn's stochastic solvers as xpnet optimizers and schedules.

`SklearnSGD` and `SklearnAdam` are update rules of `xpnet.optim` (they take the flat P and G
of a net's parameter buffer) in the form of sklearn.neural_network's SGDOptimizer and
AdamOptimizer; `InvScaling` and `Adaptive` are the learning-rate schedules of its
`learning_rate="invscaling"` and `"adaptive"`. With them the estimators take scikit-learn's
steps, not merely similar ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..optim import Adam, Optimizer, Schedule
from ..optim.base import in_range, positive

__all__ = ["Adaptive", "InvScaling", "SklearnAdam", "SklearnSGD"]

Array = Any


class SklearnSGD(Optimizer, name="sklearn_sgd"):
    """scikit-learn's SGD: v <- momentum * v - lr * g, then p <- p + v, or with Nesterov's
    momentum p <- p + momentum * v - lr * g. The velocity is kept in units of a step (unlike
    xpnet.SGD's v <- momentum * v + g, p <- p - lr * v), so a learning rate that changes
    (`InvScaling`, `Adaptive`) changes the steps as it does in scikit-learn."""

    slots = ("velocity",)

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = True,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm, schedule=schedule)
        self.momentum = in_range("momentum", momentum, 0.0, 1.0, closed_high=True)
        self.nesterov = bool(nesterov)

    def update_rule(
        self, P: Array, G: Array, state: dict[str, Array], lr: Any, xp: Any, fns: Any
    ) -> Array:
        mu = self.momentum
        v = mu * state["velocity"] - lr * G
        state["velocity"] = v
        return P + (mu * v - lr * G if self.nesterov else v)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "momentum": self.momentum, "nesterov": self.nesterov}


class SklearnAdam(Adam, name="sklearn_adam"):
    """Adam in scikit-learn's (and Kingma & Ba's section 2) form: eps is added to sqrt(v), not
    to the bias-corrected sqrt(v_hat): p <- p - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m /
    (sqrt(v) + eps). xpnet.Adam's fused update computes it with eps / sqrt(1 - beta2^t)."""

    def _step_eps(self, t: int) -> float:
        return self.eps / math.sqrt(1.0 - self.beta2**t)


class InvScaling(Schedule, name="invscaling"):
    """scikit-learn's learning_rate="invscaling": factor 1 / (samples + 1) ** power_t after an
    epoch that ends with `samples` training samples seen in all (the estimator's `t_`, the
    record's "samples"); 1 until the first epoch ends."""

    def __init__(self, power_t: float = 0.5) -> None:
        super().__init__()
        self.power_t = in_range("power_t", power_t, 0.0, math.inf)
        self.scale = 1.0

    def _after_warmup(self, epoch: int) -> float:
        return self.scale

    def observe(self, record: Mapping[str, float]) -> None:
        self.scale = 1.0 / (record["samples"] + 1) ** self.power_t

    def _arguments(self) -> dict[str, Any]:
        return {"power_t": self.power_t}

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scale = float(state.get("scale", 1.0))


class Adaptive(Schedule, name="adaptive"):
    """scikit-learn's learning_rate="adaptive": the estimator marks an epoch "stalled" when
    n_iter_no_change epochs in a row have not improved by tol; then the learning rate is
    divided by `divisor`, unless it is already at most `min_lr`, when `lowered` is False and
    the estimator stops."""

    def __init__(self, divisor: float = 5.0, min_lr: float = 1e-6) -> None:
        super().__init__()
        self.divisor = positive("divisor", divisor)
        self.min_lr = positive("min_lr", min_lr)
        self.scale = 1.0
        self.lowered = False

    def _after_warmup(self, epoch: int) -> float:
        return self.scale

    def observe(self, record: Mapping[str, float]) -> None:
        self.lowered = bool(record.get("stalled")) and record["lr"] > self.min_lr
        if self.lowered:
            self.scale /= self.divisor

    def _arguments(self) -> dict[str, Any]:
        return {"divisor": self.divisor, "min_lr": self.min_lr}

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scale = float(state.get("scale", 1.0))
