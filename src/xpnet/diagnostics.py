"""Gradient-norm probes: how large each layer's weight gradient is in a freshly initialized net.

The seeds' claim made measurable: a sigmoid's derivative is at most 1/4, so the error reaching
layer 1 of a deep sigmoid net is multiplied by at most 1/4 per layer on its way down and the
first layers barely learn ("vanishing gradients"); tanh (derivative up to 1) and relu (0 or 1)
lose far less.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .backend import Backend, asarray, to_numpy
from .losses import Loss, SoftmaxCrossEntropyLoss
from .model import MLP


def layer_gradient_norms(net: MLP, X: Any, T: Any, loss: Loss) -> list[float]:
    """The Euclidean norm of dL/dW for each Linear layer, layer 1 (the input side) first,
    after one forward and backward pass on X, T (host or net arrays; T shaped (n, n_out))."""
    X, T = asarray(X, like=net), asarray(T, like=net)
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    xp = net.backend.xp
    return [
        float(to_numpy(xp.sqrt(xp.sum(g * g))))
        for name, g in net.grads.items()
        if name.startswith("W")
    ]


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
    so only the hidden activations differ between columns."""
    loss = loss or SoftmaxCrossEntropyLoss()
    n_in, n_out = X.shape[1], T.shape[1]
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
                backend=backend,
                device=device,
                dtype=dtype,
                seed=seed,
            )
            results[activation][str(depth)] = layer_gradient_norms(net, X, T, loss)
    return results
