"""Each layer kind's forward pass in evaluation mode as ONNX nodes: the same math as its
`forward` (dropout is the identity, batch norm uses its running statistics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..backend import to_numpy
from ..layers import (
    GELU,
    BatchNorm,
    Dropout,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from ..layers.sequence import layer_names, leaves
from .graph import GraphBuilder

__all__ = ["CONVERTERS", "LayerEmitter"]

SOFTPLUS_THRESHOLD = 20.0  # xpnet's Softplus (torch's) is x itself above it


class LayerEmitter:
    """Adds the nodes of a net's layers to `graph`; each parameter and statistic becomes an
    initializer under its name in the net (W1, b1, gamma2, running_mean2, ...)."""

    def __init__(self, layers: Sequence[Layer], graph: GraphBuilder) -> None:
        self.graph = graph
        self._names = {
            id(leaf): names for leaf, names in zip(leaves(layers), layer_names(layers), strict=True)
        }

    def sequence(self, layers: Sequence[Layer], x: str) -> str:
        """The tensor `layers` make of tensor x, in order."""
        for layer in layers:
            convert = CONVERTERS.get(type(layer))
            if convert is None:
                raise ValueError(
                    f"{layer!r} ({type(layer).__qualname__}) has no ONNX form: xpnet exports "
                    f"its own layers ({', '.join(cls.__name__ for cls in CONVERTERS)})"
                )
            x = convert(self, layer, x)
        return x

    def tensor(self, layer: Layer, key: str) -> str:
        """The initializer of `layer`'s parameter or statistic `key`, added on first use."""
        values = {**layer.params, **layer.statistics}
        return self.graph.parameter(self._names[id(layer)][key], to_numpy(values[key]))


Converter = Callable[[LayerEmitter, Any, str], str]


def _linear(emit: LayerEmitter, layer: Linear, x: str) -> str:
    W = emit.tensor(layer, "W")
    if not layer.bias:
        return emit.graph.node("MatMul", [x, W])
    return emit.graph.node("Gemm", [x, W, emit.tensor(layer, "b")])


def _op(op: str) -> Converter:
    """An activation that is one ONNX operator."""
    return lambda emit, layer, x: emit.graph.node(op, [x])


def _unchanged(emit: LayerEmitter, layer: Layer, x: str) -> str:
    return x


def _leaky_relu(emit: LayerEmitter, layer: LeakyReLU, x: str) -> str:
    return emit.graph.node("LeakyRelu", [x], alpha=layer.slope)


def _gelu(emit: LayerEmitter, layer: GELU, x: str) -> str:
    """x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt(2))) (Gelu is an operator only from opset 20)."""
    g = emit.graph
    erf = g.node("Erf", [g.node("Mul", [x, g.constant("sqrt_half", math.sqrt(0.5))])])
    cdf = g.node("Mul", [g.node("Add", [erf, g.constant("one", 1.0)]), g.constant("half", 0.5)])
    return g.node("Mul", [x, cdf])


def _silu(emit: LayerEmitter, layer: SiLU, x: str) -> str:
    return emit.graph.node("Mul", [x, emit.graph.node("Sigmoid", [x])])


def _softplus(emit: LayerEmitter, layer: Softplus, x: str) -> str:
    g = emit.graph
    above = g.node("Greater", [x, g.constant("softplus_threshold", SOFTPLUS_THRESHOLD)])
    return g.node("Where", [above, x, g.node("Softplus", [x])])


def _layer_norm(emit: LayerEmitter, layer: LayerNorm, x: str) -> str:
    scale, shift = emit.tensor(layer, "gamma"), emit.tensor(layer, "beta")
    return emit.graph.node("LayerNormalization", [x, scale, shift], axis=-1, epsilon=layer.eps)


def _batch_norm(emit: LayerEmitter, layer: BatchNorm, x: str) -> str:
    inputs = [x, *(emit.tensor(layer, k) for k in ("gamma", "beta", "running_mean", "running_var"))]
    return emit.graph.node("BatchNormalization", inputs, epsilon=layer.eps)


def _residual(emit: LayerEmitter, layer: Residual, x: str) -> str:
    return emit.graph.node("Add", [x, emit.sequence(layer.sublayers, x)])


CONVERTERS: dict[type[Layer], Converter] = {
    Linear: _linear,
    Sigmoid: _op("Sigmoid"),
    Tanh: _op("Tanh"),
    ReLU: _op("Relu"),
    LeakyReLU: _leaky_relu,
    GELU: _gelu,
    SiLU: _silu,
    Softplus: _softplus,
    Identity: _unchanged,
    Dropout: _unchanged,  # the identity in evaluation
    LayerNorm: _layer_norm,
    BatchNorm: _batch_norm,
    Residual: _residual,
}
