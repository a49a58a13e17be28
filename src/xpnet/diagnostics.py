"""Gradient-norm probes: how large each layer's weight gradient is in a freshly initialized net,
and how far the same nets get in a short training run.

The seeds' claim made measurable: a sigmoid's derivative is at most 1/4, so the error reaching
layer 1 of a deep sigmoid net is multiplied by at most 1/4 per layer on its way down and the
first layers barely learn ("vanishing gradients"); tanh (derivative up to 1) and relu (0 or 1)
lose far less. The cures are measured the same way: a net kind such as "sigmoid+layer+residual"
is a sigmoid MLP with LayerNorm and residual blocks (`NetKind`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from .backend import Backend, get_backend, to_numpy
from .inputs import prepare
from .layers import Linear
from .layers.sequence import leaves
from .losses import Loss, SoftmaxCrossEntropyLoss
from .model import HIDDEN_ACTIVATIONS, MLP, NORMS
from .optim import Adam
from .sequential import Sequential
from .train import fit

__all__ = [
    "NetKind",
    "accuracy_study",
    "first_over_last",
    "layer_gradient_norms",
    "vanishing_study",
]

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


@dataclasses.dataclass(frozen=True)
class NetKind:
    """The hidden layers of a studied net: their activation, normalization (None, "layer" or
    "batch") and whether equal widths form residual blocks, as `MLP` takes them. Its `name`
    joins them with "+": "sigmoid", "relu", "sigmoid+layer", "sigmoid+layer+residual"."""

    hidden: str
    norm: str | None = None
    residual: bool = False

    @property
    def name(self) -> str:
        return "+".join([self.hidden, *filter(None, [self.norm]), *(["residual"] * self.residual)])

    @classmethod
    def parse(cls, name: str) -> NetKind:
        """The kind a name says: an activation, then optionally "+layer" or "+batch", then
        optionally "+residual"; a ValueError says what is wrong with any other name."""
        hidden, *cures = name.split("+")
        norm = cures.pop(0) if cures and cures[0] in NORMS else None
        residual = cures == ["residual"]
        if hidden not in HIDDEN_ACTIVATIONS or cures not in ([], ["residual"]):
            raise ValueError(
                f"unknown net {name!r}: an activation ({', '.join(HIDDEN_ACTIVATIONS)}), then "
                "optionally +layer or +batch, then optionally +residual"
            )
        return cls(hidden, norm, residual)

    def build(self, sizes: Sequence[int], **placement: Any) -> MLP:
        """An MLP of these widths with these hidden layers and a linear output."""
        return MLP(
            sizes,
            hidden=self.hidden,
            output="identity",
            norm=self.norm,
            residual=self.residual,
            **placement,
        )


def first_over_last(norms: Sequence[float]) -> float:
    """Layer 1's gradient norm over the last layer's: how much of the error signal reaches the
    input side (NaN where the last layer's is 0, as a one-sample batch can give)."""
    return norms[0] / norms[-1] if norms[-1] else float("nan")


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
    """{net: {str(depth): [norm of layer 1's weight gradient, ..., the last layer's]}}.

    Each of `activations` names a net kind (`NetKind`): an activation ("sigmoid") or one with
    cures ("sigmoid+layer+residual"). Depth is the number of weight layers: depth 1 is a single
    Linear layer, depth d has d - 1 hidden layers of `width` units. Every net has a linear
    output and softmax cross-entropy (unless `loss` says otherwise), the same seed and the same
    batch, so only the hidden layers differ between columns. X and T are moved to the backend
    once, for all the nets."""
    loss = loss or SoftmaxCrossEntropyLoss()
    place = get_backend(backend, device)
    n_in, n_out = X.shape[1], T.shape[1]
    data: tuple[Array, Array] | None = None
    results: dict[str, dict[str, list[float]]] = {}
    for kind in map(NetKind.parse, activations):
        results[kind.name] = {}
        for depth in depths:
            if depth < 1:
                raise ValueError(f"depth must be at least 1 weight layer, got {depth}")
            sizes = [n_in, *[width] * (depth - 1), n_out]
            net = kind.build(sizes, backend=place, dtype=dtype, seed=seed)
            if data is None:  # every net shares the backend, device, dtype and widths n_in, n_out
                data = prepare(net, X, T, "vanishing study")
            results[kind.name][str(depth)] = _norms(net, *data, loss)
    return results


def accuracy_study(
    nets: Iterable[str],
    depth: int,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    n_classes: int,
    *,
    width: int = 32,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    backend: str | Backend = "numpy",
    device: Any = None,
    dtype: str = "float64",
    seed: int = 0,
) -> dict[str, list[float]]:
    """{net: [held-out accuracy after epoch 1, ..., after `epochs`]}: each net kind (as in
    `vanishing_study`) at `depth` weight layers, trained by Adam(lr) with softmax
    cross-entropy on `train` (X, labels y coded 0 .. n_classes - 1) for the same epochs,
    batches and seed, and scored on `test` after every epoch. What the gradients predict,
    shown: a net whose first layers get no gradient stays near chance."""
    X, y = train
    sizes = [int(X.shape[1]), *[width] * (depth - 1), n_classes]
    place = get_backend(backend, device)
    results: dict[str, list[float]] = {}
    for kind in map(NetKind.parse, nets):
        net = kind.build(sizes, backend=place, dtype=dtype, seed=seed)
        history = fit(
            net,
            X,
            y,
            loss=SoftmaxCrossEntropyLoss(),
            optimizer=Adam(lr=lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            validation=test,
        )
        results[kind.name] = history["val_accuracy"]
    return results
