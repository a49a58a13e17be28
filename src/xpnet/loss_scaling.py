"""Dynamic loss scaling for float16 training ("16-mixed"), as torch.amp.GradScaler does it.

float16's smallest normal number is 6e-5, so small gradients flush to zero in its products:
the loss gradient is multiplied by a large scale before backward and the float32 gradients
are divided by it before the update. The scale starts at 2^16, halves on a step whose
gradients overflow (that update is skipped) and doubles after 2000 clean steps in a row.
Every decision is made on the device with `where` (no host read per step, so the step stays
one capturable unit); the host reads the scale and the count of skipped steps only when asked
(`summary`, `state_dict`), once per epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from array_api_compat import array_namespace, device

from .backend import to_numpy
from .optim import Optimizer, Trainable

__all__ = ["GROWTH_INTERVAL", "INITIAL_SCALE", "LossScaler"]

Array = Any

INITIAL_SCALE = 2.0**16
GROWTH_INTERVAL = 2000


class LossScaler:
    """The scale, the clean steps since it last changed and the skipped steps so far, as 0-d
    arrays on the device of `like` (the net's flat parameters)."""

    def __init__(
        self, like: Array, scale: float = INITIAL_SCALE, clean_steps: int = 0, skipped: int = 0
    ) -> None:
        xp, where = array_namespace(like), device(like)
        self.xp = xp
        self.scale: Array = xp.asarray(scale, dtype=like.dtype, device=where)
        self.clean_steps: Array = xp.asarray(clean_steps, dtype=xp.int32, device=where)
        self.skipped: Array = xp.asarray(skipped, dtype=xp.int32, device=where)

    def scaled(self, gY: Array) -> Array:
        """The loss gradient times the scale: what backward starts from."""
        return gY * self.scale

    def step(
        self,
        model: Trainable,
        optimizer: Optimizer,
        G: Array | None = None,
        reduce: Callable[[Array], Array] | None = None,
    ) -> None:
        """`optimizer.step` on the unscaled gradients (the model's last backward's, or G),
        summed by `reduce` first when given, kept only where every gradient is finite: a step
        that overflowed leaves the parameters and the optimizer's state as they were (its
        step counter, a host number, still counts it), halves the scale and is counted."""
        xp, buffer = self.xp, model.parameter_buffer
        if G is None:
            G = buffer.flat_gradients()
        if reduce is not None:
            G = reduce(G)
        finite = xp.all(xp.isfinite(G))
        P = buffer.flat_parameters()
        optimizer.prepare(P, buffer.layout)
        kept_P = xp.asarray(P, copy=True)
        kept_state = {k: xp.asarray(v, copy=True) for k, v in optimizer.slot_state().items()}
        new_P = optimizer.update(P, G / self.scale, buffer.layout)
        state = optimizer.slot_state()
        optimizer.took_steps({k: xp.where(finite, state[k], v) for k, v in kept_state.items()}, 0)
        buffer.store_flat_parameters(xp.where(finite, new_P, kept_P))
        self._follow(finite)

    def _follow(self, finite: Array) -> None:
        """Move the scale after a step: halve it on overflow, double it after
        GROWTH_INTERVAL clean steps in a row."""
        xp = self.xp
        clean = xp.where(finite, self.clean_steps + 1, 0)
        grow = clean >= GROWTH_INTERVAL
        self.scale = xp.where(
            finite, xp.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5
        )
        self.clean_steps = xp.where(grow, 0, clean)
        self.skipped = self.skipped + xp.astype(xp.logical_not(finite), xp.int32)

    def summary(self) -> dict[str, float]:
        """{"loss_scale", "skipped_steps"} read on the host: a history record's columns."""
        state = self.state_dict()
        return {"loss_scale": state["loss_scale"], "skipped_steps": state["skipped_steps"]}

    def state_dict(self) -> dict[str, Any]:
        """The scaler's numbers as JSON values, for checkpoints."""
        return {
            "loss_scale": float(to_numpy(self.scale)),
            "clean_steps": int(to_numpy(self.clean_steps)),
            "skipped_steps": int(to_numpy(self.skipped)),
        }

    @classmethod
    def from_state(cls, like: Array, state: Mapping[str, Any]) -> LossScaler:
        """The scaler `state_dict` saved, on the device of `like`."""
        return cls(
            like,
            scale=float(state["loss_scale"]),
            clean_steps=int(state["clean_steps"]),
            skipped=int(state["skipped_steps"]),
        )
