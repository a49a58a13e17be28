"""Inverted dropout: in training each unit is kept with probability 1 - p and scaled by
1 / (1 - p), so evaluation (the identity) sees the same expected activations."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from array_api_compat import array_namespace

from .. import ops
from .base import Layer

__all__ = ["Dropout"]

Array = Any


class Dropout(Layer, name="dropout"):
    """y = x * mask / (1 - p) in training, with mask 1 where a uniform draw is >= p; y = x in
    evaluation. The draws are made on the net's device from the run's seed (`reseed`: the
    net's seed at construction, then (fit's seed, epoch) at each epoch), so a run is
    reproducible and a resumed one draws the masks the uninterrupted one would have."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be a probability in [0, 1), got {p!r}")
        self.p: float = float(p)
        self._entropy: tuple[int, ...] = (0,)
        self._draw: Any = None  # shape -> uniform numbers, made at the first draw
        self._mask: Array = None

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def reseed(self, entropy: Sequence[int]) -> None:
        self._entropy, self._draw = tuple(entropy), None

    def forward(self, x: Array) -> Array:
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        xp = array_namespace(x)
        if self._draw is None:
            self._draw = ops.ops_for(xp).uniform_source(self._entropy, x, xp)
        keep = self._draw(tuple(x.shape)) >= self.p
        self._mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, grad: Array) -> Array:
        """The forward's mask applied to the gradient (the identity in evaluation)."""
        return grad if self._mask is None else grad * self._mask
