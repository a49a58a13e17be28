"""Adam (Kingma & Ba), in PyTorch's form."""

from __future__ import annotations

from typing import Any

from ..ops import AdamScalars, Ops
from .base import Optimizer, in_range, positive
from .schedules import Schedule

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer, name="adam"):
    """p <- p - lr * m_hat / (sqrt(v_hat) + eps) with m, v the running means of g and g^2 and
    their bias corrections at step t; the corrections are Python floats, so a step needs no
    host synchronisation."""

    slots = ("m", "v")
    suggested_lr = 0.01
    varies_per_step = "its bias corrections 1 - beta^t change every step"
    traceable = True  # update_rule reads no number on the host

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, clip_norm=clip_norm, schedule=schedule)
        self.beta1 = in_range("beta1", beta1, 0.0, 1.0)
        self.beta2 = in_range("beta2", beta2, 0.0, 1.0)
        self.eps = positive("eps", eps)

    def step_numbers(self, t: int, lr: float) -> Any:
        return AdamScalars.at_step(
            t, lr=lr, beta1=self.beta1, beta2=self.beta2, eps=self._step_eps(t)
        )

    def update_rule(
        self, P: Any, G: Any, state: dict[str, Any], scalars: Any, xp: Any, fns: Ops
    ) -> Any:
        P, state["m"], state["v"] = fns.adam_update(P, G, state["m"], state["v"], scalars, xp=xp)
        return P

    def _step_eps(self, t: int) -> float:
        """The eps step t adds to sqrt(v_hat) (a subclass may place eps elsewhere: an eps
        added to sqrt(v) is eps / sqrt(1 - beta2^t) added to sqrt(v_hat))."""
        return self.eps

    def hyperparameters(self) -> dict[str, Any]:
        return {
            **super().hyperparameters(),
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
        }


class AdamW(Adam, name="adamw"):
    """Adam with decoupled weight decay (Loshchilov & Hutter): each step first shrinks every
    weight matrix by lr * weight_decay * W (biases spared), then takes Adam's step on the
    plain gradient, as torch.optim.AdamW does; weight_decay defaults to 0.01 as there."""

    decoupled_weight_decay = True
    traceable = True
    default_weight_decay = 0.01

    def __init__(
        self, *args: Any, weight_decay: float = default_weight_decay, **options: Any
    ) -> None:
        """Adam's arguments (lr, beta1, beta2, eps; clip_norm, schedule)."""
        super().__init__(*args, weight_decay=weight_decay, **options)

    def step_numbers(self, t: int, lr: float) -> Any:
        """Adam's scalars and this step's decay rate lr * weight_decay."""
        return super().step_numbers(t, lr), lr * self.weight_decay

    def update_rule(
        self, P: Any, G: Any, state: dict[str, Any], numbers: Any, xp: Any, fns: Ops
    ) -> Any:
        scalars, decay_rate = numbers
        if self.weight_decay:
            mask = self._weight_mask(P, self._layout)
            decay = P if mask is None else mask * P
            P = fns.sgd_update(P, decay, lr=decay_rate, xp=xp)
        return super().update_rule(P, G, state, scalars, xp, fns)
