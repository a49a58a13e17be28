"""Facts about a list of layers, asked before and while a net runs them: the leaves (a container
such as Residual opened up), each parameter's and statistic's name and shape, the widths at
every joint, the starting init of each Linear, and the plan that fuses a Linear with the
activation after it, forward and backward. `Sequential` and the container layers share them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .activations import Activation, Identity
from .base import Layer
from .dropout import Dropout
from .linear import Linear

__all__ = [
    "Plan",
    "backward_through",
    "choose_inits",
    "forward_plan",
    "forward_through",
    "has_parameters",
    "layer_names",
    "leaves",
    "parameter_count",
    "parameter_shapes",
    "statistic_shapes",
    "widths",
]

Array = Any
Plan = list[tuple[Any, Linear | None]]


def leaves(layers: Sequence[Layer]) -> list[Layer]:
    """The layers in order, each container (a layer with `sublayers`) replaced by its leaves."""
    out: list[Layer] = []
    for layer in layers:
        out += leaves(layer.sublayers) if layer.sublayers else [layer]
    return out


def has_parameters(layer: Layer) -> bool:
    """Whether the layer (or a layer inside it) has parameters."""
    return any(leaf.parameter_shapes() for leaf in leaves([layer]))


def layer_names(layers: Sequence[Layer]) -> list[dict[str, str]]:
    """Per leaf, {key: name in the net} of its parameters and statistics: key + k for the
    k-th leaf that has any (W1 and b1 for a first Linear, W2 and b2 for the next, ...)."""
    names, k = [], 0
    for leaf in leaves(layers):
        keys = [*leaf.parameter_shapes(), *leaf.statistic_shapes()]
        k += bool(keys)
        names.append({key: f"{key}{k}" for key in keys})
    return names


def _shapes(layers: Sequence[Layer], statistics: bool) -> dict[str, tuple[int, ...]]:
    found = leaves(layers)
    return {
        names[key]: shape
        for leaf, names in zip(found, layer_names(layers), strict=True)
        for key, shape in (
            leaf.statistic_shapes() if statistics else leaf.parameter_shapes()
        ).items()
    }


def parameter_shapes(layers: Sequence[Layer]) -> dict[str, tuple[int, ...]]:
    """{name: shape} of every parameter of a net of these layers, in layout order (nothing is
    allocated: a checkpoint's architecture is checked with it before a net is built)."""
    return _shapes(layers, statistics=False)


def statistic_shapes(layers: Sequence[Layer]) -> dict[str, tuple[int, ...]]:
    """{name: shape} of every statistic (state that is saved but not trained, such as
    BatchNorm's running mean) of a net of these layers."""
    return _shapes(layers, statistics=True)


def parameter_count(layers: Sequence[Layer]) -> int:
    """The number of scalars in the parameters of a net of these layers."""
    return sum(math.prod(shape) for shape in parameter_shapes(layers).values())


def widths(layers: Sequence[Layer]) -> list[int]:
    """The number of features into the first layer and out of each layer, checked at every
    joint; a ValueError names the first pair that does not fit."""
    first = next((layer.input_width for layer in layers if layer.input_width is not None), None)
    if first is None:
        raise ValueError(
            "no layer says how many features it takes: start with a layer of fixed width "
            "such as xpnet.Linear(n_in, n_out)"
        )
    out = [first]
    for i, layer in enumerate(layers, 1):
        if layer.input_width is not None and layer.input_width != out[-1]:
            before = f"layer {i - 1} ({layers[i - 2]!r}) gives" if i > 1 else "the input has"
            raise ValueError(
                f"layer {i} ({layer!r}) takes {layer.input_width} features but {before} "
                f"{out[-1]}; make the widths of neighbouring layers agree"
            )
        out.append(layer.output_width(out[-1]))
    return out


def choose_inits(layers: Sequence[Layer]) -> None:
    """Give each Linear built with init=None the init of the activation after it (before it
    for a last Linear; Glorot in a net with no activation): He for the ReLU family."""
    found = leaves(layers)
    acts = [
        (i, leaf)
        for i, leaf in enumerate(found)
        if isinstance(leaf, Activation) and not isinstance(leaf, Identity)
    ]
    for i, leaf in enumerate(found):
        if isinstance(leaf, Linear) and leaf.init is None:
            near = [a for j, a in acts if j > i][:1] or [a for j, a in acts if j < i][-1:]
            leaf.init = near[0].init if near else "xavier"


def forward_plan(layers: Sequence[Layer]) -> Plan:
    """The plan, decided once, that forward runs in order and backward in reverse:
    (activation, linear) where an activation follows a Linear (computed in place into the
    Linear's fresh output, its bias add fused in where the ops can; backward, its bias
    gradient fused with the activation's backward where they can); (dropout, linear) where a
    Dropout follows those two (the block Linear -> activation -> Dropout, `dropout.activation`
    set to its activation; see Dropout); (layer, None) for every other layer."""
    plan: Plan = []
    i = 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        third = layers[i + 2] if i + 2 < len(layers) else None
        if isinstance(layer, Linear) and isinstance(after, Activation):
            if isinstance(third, Dropout) and not after.backward_from_input:
                third.activation = after
                plan.append((third, layer))
                i += 3
                continue
            plan.append((after, layer))
            i += 2
        else:
            plan.append((layer, None))
            i += 1
    return plan


def forward_through(plan: Plan, x: Array) -> Array:
    """x through the layers of a forward plan, in order."""
    for layer, linear in plan:
        x = layer.forward(x) if linear is None else layer.forward_linear(linear, x)
    return x


def backward_through(plan: Plan, grad: Array) -> Array:
    """dL/d(output) through a forward plan's steps in reverse: dL/d(input). A planned block
    takes its Linear's backward with its own (`backward_linear`: one pass for the activation's
    backward, the mask and the bias gradient where the ops can)."""
    for layer, linear in reversed(plan):
        grad = layer.backward(grad) if linear is None else layer.backward_linear(linear, grad)
    return grad
