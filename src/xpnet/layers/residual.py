"""A residual block: y = x + f(x), f a sequence of layers that keeps the width. The skip path
carries the gradient past f unchanged, which is why deep stacks of these keep learning where
plain stacks of sigmoids stop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Layer, layer_config, layer_from_config
from .sequence import Plan, backward_through, forward_plan, forward_through, widths

__all__ = ["Residual"]

Array = Any


class Residual(Layer, name="residual"):
    """y = x + f(x) with f the `layers` in order (layers, or their checkpoint entries); its
    backward adds the skip path's gradient to f's. The net places, names and trains the
    layers inside as if they stood in its own sequence."""

    def __init__(self, layers: Sequence[Layer | dict[str, Any]]) -> None:
        inner = [
            layer if isinstance(layer, Layer) else layer_from_config(layer) for layer in layers
        ]
        if not inner:
            raise ValueError("a residual block needs at least one layer")
        sizes = widths(inner)
        if sizes[0] != sizes[-1]:
            raise ValueError(
                f"a residual block must keep the width: its layers take {sizes[0]} features "
                f"and give {sizes[-1]}"
            )
        self.sublayers: list[Layer] = inner
        self.input_width = sizes[0]
        self._plan: Plan = forward_plan(inner)

    traceable = True  # its own math; the net asks each layer inside for itself

    def config(self) -> dict[str, Any]:
        return {"layers": [layer_config(layer) for layer in self.sublayers]}

    def forward(self, x: Array) -> Array:
        return x + forward_through(self._plan, x)

    def backward(self, grad: Array) -> Array:
        return grad + backward_through(self._plan, grad)

    def __repr__(self) -> str:
        return f"Residual({self.sublayers})"
