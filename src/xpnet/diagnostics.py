"""Gradient-norm probes: how large each layer's weight gradient is in a freshly initialized net.

The seeds' claim made measurable: a sigmoid's derivative is at most 1/4, so the error reaching
layer 1 of a deep sigmoid net is multiplied by at most 1/4 per layer on its way down and the
first layers barely learn ("vanishing gradients"); tanh (derivative up to 1) and relu (0 or 1)
lose far less.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .backend import Backend, get_backend, to_numpy
from .inputs import prepare
from .layers import Linear
from .layers.sequence import leaves
from .losses import Loss, SoftmaxCrossEntropyLoss
from .model import MLP
from .sequential import Sequential

__all__ = ["layer_gradient_norms", "vanishing_study"]

Array = Any


def layer_gradient_norms(net: Sequential, X: Any, T: Any, loss: Loss) -> list[float]:
    """The Euclidean norm of dL/dW for each Linear layer, layer 1 (the input side) first,
    after one forward and backward pass on X, T. Data rules as in `fit`: NumPy data is moved
    to the net explicitly, the net's own arrays are used as they are, other libraries raise."""
    return _norms(net, *prepare(net, X, T), loss)


def _norms(net: Sequential, X: Array, T: Array, loss: Loss) -> list[float]:
    """`layer_gradient_norms` on data already prepared for (a net placed like) `net`."""
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    xp = net.backend.xp
    weights = [layer.grads["W"] for layer in leaves(net.layers) if isinstance(layer, Linear)]
    return [float(to_numpy(xp.sqrt(xp.sum(g * g)))) for g in weights]


def vanishing_study(
    depths: Iterable[int],
    activations: Iterable[str],
    X: Any,
    T: Any,
    *,
    width: int = 32,
    loss: Loss | None = None,
    backend: str | Backend = "numpy",
    device: Any = None,
    dtype: str = "float64",
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """{activation: {str(depth): [norm of layer 1's weight gradient, ..., the last layer's]}}.

    Depth is the number of weight layers: depth 1 is a single Linear layer, depth d has d - 1
    hidden layers of `width` units with the given activation. Every net has a linear output
    and softmax cross-entropy (unless `loss` says otherwise), the same seed and the same batch,
    so only the hidden activations differ between columns. X and T are moved to the backend
    once, for all the nets."""
    loss = loss or SoftmaxCrossEntropyLoss()
    place = get_backend(backend, device)
    n_in, n_out = X.shape[1], T.shape[1]
    data: tuple[Array, Array] | None = None
    results: dict[str, dict[str, list[float]]] = {}
    for activation in activations:
        results[activation] = {}
        for depth in depths:
            if depth < 1:
                raise ValueError(f"depth must be at least 1 weight layer, got {depth}")
            net = MLP(
                [n_in, *[width] * (depth - 1), n_out],
                hidden=activation,
                output="identity",
                backend=place,
                dtype=dtype,
                seed=seed,
            )
            if data is None:  # every net shares the backend, device, dtype and widths n_in, n_out
                data = prepare(net, X, T, "vanishing study")
            results[activation][str(depth)] = _norms(net, *data, loss)
    return results
