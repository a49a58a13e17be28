"""Dynamic loss scaling for float16 training ("16-mixed"), as torch.amp.GradScaler does it.

float16's smallest normal number is 6e-5, so small gradients flush to zero in its products:
the loss gradient is multiplied by a large scale before backward and the float32 gradients
are divided by it before the update. The scale starts at 2^16, halves on a step whose
gradients overflow and doubles after 2000 clean steps in a row. A step that overflowed is
skipped whole, as GradScaler skips `optimizer.step`: the parameters, the optimizer's state and
its step count (Adam's t, in the bias corrections) stay as they were.

An eager step (`step`) reads that one flag, finite or not, on the host, as GradScaler does
with an unfused optimizer. A compiled step (`rule`, traced by `jax.jit` or replayed from a
CUDA graph) decides on the device with `where` and reports the flag, by which the compiled
epoch counts its steps taken on the device (`compiled.py`). The scale and the counts change
on the device (in place where the arrays allow, so a graph's tensors keep their addresses);
the host reads them only when asked (`summary`, `state_dict`), once per epoch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import array_api_extra as xpx
from array_api_compat import array_namespace, device

from .backend import to_numpy
from .optim import Optimizer, Trainable
from .params import Layout

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
        summed by `reduce` first when given, taken only when every gradient is finite (one
        host read): a step that overflowed leaves the parameters, the optimizer's state and
        its step count as they were, halves the scale and is counted."""
        if G is None:
            G = model.parameter_buffer.flat_gradients()
        if reduce is not None:
            G = reduce(G)
        finite = self._finite(G)
        if bool(finite):
            optimizer.step(model, G / self.scale)
        self._follow(finite)

    def rule(
        self,
        optimizer: Optimizer,
        P: Array,
        G: Array,
        state: dict[str, Array],
        numbers: Any,
        layout: Layout | None,
    ) -> tuple[Array, Array]:
        """`optimizer.rule` on G / scale as a compiled step traces it, decided on the device:
        where a gradient is not finite, P and the slots in `state` are put back as they were
        (in place where the arrays allow) and the scale halves. Returns the new P and whether
        the step was taken (a 0-d bool array), by which the caller counts the steps taken."""
        xp = self.xp
        finite = self._finite(G)
        kept_P = xp.asarray(P, copy=True)
        kept = {k: xp.asarray(v, copy=True) for k, v in state.items()}
        P = optimizer.rule(P, G / self.scale, state, numbers, layout)
        for k, old in kept.items():
            state[k] = xpx.at(state[k])[...].set(xp.where(finite, state[k], old))
        self._follow(finite)
        return xpx.at(P)[...].set(xp.where(finite, P, kept_P)), finite

    def _finite(self, G: Array) -> Array:
        """Whether every element of G is finite, as a 0-d bool array on its device."""
        return self.xp.all(self.xp.isfinite(G))

    def _follow(self, finite: Array) -> None:
        """Move the scale after a step: halve it on overflow, double it after
        GROWTH_INTERVAL clean steps in a row; count a skipped step."""
        xp = self.xp
        clean = xp.where(finite, self.clean_steps + 1, 0)
        grow = clean >= GROWTH_INTERVAL
        scale = xp.where(finite, xp.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5)
        skipped = self.skipped + xp.astype(xp.logical_not(finite), xp.int32)
        self.scale = xpx.at(self.scale)[...].set(scale)
        self.clean_steps = xpx.at(self.clean_steps)[...].set(xp.where(grow, 0, clean))
        self.skipped = xpx.at(self.skipped)[...].set(skipped)

    def numbers(self) -> dict[str, Array]:
        """The scale and the counts by their `state_dict` names, as the 0-d arrays they are:
        what a compiled epoch carries from step to step."""
        return {
            "loss_scale": self.scale,
            "clean_steps": self.clean_steps,
            "skipped_steps": self.skipped,
        }

    def take_numbers(self, state: dict[str, Array]) -> None:
        """Take the arrays `numbers` names out of `state` (a compiled step's) as its own."""
        self.scale = state.pop("loss_scale")
        self.clean_steps = state.pop("clean_steps")
        self.skipped = state.pop("skipped_steps")

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
