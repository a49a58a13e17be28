"""Inverted dropout: in training each unit is kept with probability 1 - p and scaled by
1 / (1 - p), so evaluation (the identity) sees the same expected activations."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from array_api_compat import array_namespace

from .. import ops
from .base import Layer

if TYPE_CHECKING:
    from .activations import Activation
    from .linear import Linear

__all__ = ["Dropout"]

Array = Any


class Dropout(Layer, name="dropout"):
    """y = x * mask / (1 - p) in training, with mask 1 where a uniform draw is >= p; y = x in
    evaluation. The draws are made on the net's device from the run's seed (`reseed`: the
    net's seed at construction, then (fit's seed, epoch) at each epoch), so a run is
    reproducible and a resumed one draws the masks the uninterrupted one would have.

    After a Linear and an activation that caches its output, a net plans the three as one
    block (`activation`, set by layers.sequence.forward_plan): the ops may then apply the
    bias, the activation and the mask in one pass, and the mask, the activation's backward and
    the Linear's bias gradient in another (CuPy: one kernel each); the numbers are those of
    the three layers."""

    def __init__(self, p: float = 0.5) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be a probability in [0, 1), got {p!r}")
        self.p: float = float(p)
        self._entropy: tuple[int, ...] = (0,)
        self._draw: Any = None  # shape -> uniform numbers, made at the first draw
        self.mask: Array = None  # the last training forward's mask, scaled by 1 / (1 - p)
        self.activation: Activation | None = None  # the activation before it, where planned

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def reseed(self, entropy: Sequence[int]) -> None:
        self._entropy, self._draw = tuple(entropy), None

    @property
    def active(self) -> bool:
        """Whether forward drops anything (training with p > 0); otherwise mask is None."""
        return self.training and self.p > 0.0

    def uniform(self, like: Array) -> Array:
        """The next uniform draws shaped like `like`, from this layer's stream."""
        xp = array_namespace(like)
        if self._draw is None:
            self._draw = ops.ops_for(xp).uniform_source(self._entropy, like, xp)
        return self._draw(tuple(like.shape))

    def forward(self, x: Array) -> Array:
        if not self.active:
            self.mask = None
            return x
        xp = array_namespace(x)
        out, self.mask = ops.ops_for(xp).dropout(x, self.uniform(x), self.p, xp)
        return out

    def forward_linear(self, linear: Linear, x: Array) -> Array:
        """The planned block linear -> activation -> this dropout, from x."""
        if self.activation is None:
            raise RuntimeError("Dropout.forward_linear needs the activation planned before it")
        return self.activation.forward_linear_dropout(linear, x, self)

    def backward_linear(self, linear: Linear, grad: Array, input_grad: bool = True) -> Array | None:
        """The planned block's backward, through this dropout, the activation and linear."""
        if self.activation is None:
            raise RuntimeError("Dropout.backward_linear needs the activation planned before it")
        return self.activation.backward_linear_dropout(linear, grad, self, input_grad)

    def backward(self, grad: Array) -> Array:
        """The forward's mask applied to the gradient (the identity in evaluation)."""
        return grad if self.mask is None else grad * self.mask
