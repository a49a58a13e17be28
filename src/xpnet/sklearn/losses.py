"""scikit-learn's MLP losses, on the net's raw outputs.

The estimators' nets end in an identity layer: their outputs Z are the last layer's
pre-activations, and the loss applies scikit-learn's output activation (`out_activation_`:
softmax, logistic, exp or identity) itself. Its value is scikit-learn's (the mean over the
samples, weighted by the sample weights, of the per-sample loss; probabilities clipped to the
dtype's eps in the logarithms) and its gradient dL/dZ is scikit-learn's canonical-link one,
(activation(Z) - T) * w / sum(w), for every number of outputs: the gradient of the multi-output
squared error is not divided by the number of outputs, as scikit-learn's is not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from array_api_compat import array_namespace, device

from .. import ops
from ..model import MLP
from ..optim import hooks

__all__ = [
    "LOSSES",
    "BinaryLogLoss",
    "LogLoss",
    "Poisson",
    "SklearnLoss",
    "SquaredError",
    "activate",
    "objective",
    "weight_mask",
]

Array = Any


def activate(name: str, Z: Array, xp: Any) -> Array:
    """scikit-learn's output activation `name` of outputs Z (n, k)."""
    if name == "identity":
        return Z
    if name == "logistic":
        return ops.ops_for(xp).sigmoid(Z, xp)
    if name == "softmax":
        return ops.generic.softmax(Z, xp)
    if name == "exp":
        return xp.exp(Z)
    raise ValueError(f"unknown output activation {name!r}")


class SklearnLoss:
    """`forward(Z, T, sample_weight=None)` returns the loss (a 0-d array, no host sync) and
    keeps what `backward()` needs; `weight_sum` is the last forward's sum of the sample
    weights (its number of rows without them), the denominator of scikit-learn's L2 term."""

    name: ClassVar[str] = ""
    out_activation: ClassVar[str] = ""

    def __init__(self) -> None:
        self._cache: tuple[Array, Array, Array | None] | None = None
        self.weight_sum: Any = 0

    def forward(self, Z: Array, T: Array, sample_weight: Array | None = None) -> Array:
        xp = array_namespace(Z)
        P = activate(self.out_activation, Z, xp)
        if sample_weight is None:
            self.weight_sum = Z.shape[0]
            w = None
        else:
            self.weight_sum = xp.sum(sample_weight)
            w = xp.reshape(sample_weight, (-1, 1))
        self._cache = (P, T, w)
        per_element = self._per_element(P, T, xp)
        if w is not None:
            per_element = per_element * w
        return self._reduce(per_element, xp) / self.weight_sum

    def backward(self) -> Array:
        """dL/dZ = (activation(Z) - T) * w / sum(w) for the last forward."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        P, T, w = self._cache
        D = P - T
        if w is not None:
            D = D * w
        return D / self.weight_sum

    def _per_element(self, P: Array, T: Array, xp: Any) -> Array:
        raise NotImplementedError

    def _reduce(self, per_element: Array, xp: Any) -> Array:
        """Summed over outputs and samples (scikit-learn's log losses and Poisson deviance)."""
        return xp.sum(per_element)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _clipped(P: Array, xp: Any) -> Array:
    eps = xp.finfo(P.dtype).eps
    return xp.clip(P, eps, 1.0 - eps)


class SquaredError(SklearnLoss):
    """Half the squared error, averaged over the outputs too (scikit-learn's squared_loss)."""

    name = "squared_error"
    out_activation = "identity"

    def _per_element(self, P, T, xp):
        D = T - P
        return D * D

    def _reduce(self, per_element, xp):
        return 0.5 * xp.sum(per_element) / per_element.shape[1]


class Poisson(SklearnLoss):
    """Half the Poisson deviance with an exp output: y log(y / p) - y + p (0 log 0 = 0)."""

    name = "poisson"
    out_activation = "exp"

    def _per_element(self, P, T, xp):
        positive = T > 0
        safe = xp.where(positive, T, xp.ones_like(T))
        return xp.where(positive, T * xp.log(safe / P), xp.zeros_like(T)) - T + P


class LogLoss(SklearnLoss):
    """Cross-entropy of a softmax over the classes against one-hot targets."""

    name = "log_loss"
    out_activation = "softmax"

    def _per_element(self, P, T, xp):
        return -(T * xp.log(_clipped(P, xp)))


class BinaryLogLoss(SklearnLoss):
    """Binary cross-entropy of logistic outputs, summed over the outputs (binary and
    multilabel classification)."""

    name = "binary_log_loss"
    out_activation = "logistic"

    def _per_element(self, P, T, xp):
        P = _clipped(P, xp)
        return -(T * xp.log(P) + (1.0 - T) * xp.log(1.0 - P))


LOSSES: dict[str, type[SklearnLoss]] = {
    cls.name: cls for cls in (SquaredError, Poisson, LogLoss, BinaryLogLoss)
}


def weight_mask(net: MLP) -> Array:
    """1 over the weight matrices of the net's flat parameter array, 0 over the biases: where
    scikit-learn's L2 penalty applies."""
    xp, P = net.backend.xp, net.parameter_buffer.flat_parameters()
    pieces = [
        (xp.ones if len(shape) >= 2 else xp.zeros)((stop - start,), dtype=P.dtype, device=device(P))
        for _, start, stop, shape in net.parameter_buffer.layout
    ]
    return xp.concat(pieces)


def objective(
    net: MLP,
    loss: SklearnLoss,
    X: Array,
    T: Array,
    sample_weight: Array | None,
    alpha: float,
    mask: Array,
) -> tuple[Array, Array]:
    """scikit-learn's objective on one batch and its gradient: (the loss plus
    0.5 * alpha * sum(W**2) / sum(w), a 0-d array; the gradient as one flat array laid out
    like the net's parameter buffer). Backpropagation through the net, then the L2 term as the
    optimizer's weight-decay hook with the factor alpha / sum(w) of this batch."""
    value = loss.forward(net.forward(X), T, sample_weight)
    net.backward(loss.backward(), input_grad=False)
    buffer = net.parameter_buffer
    G = buffer.flat_gradients()
    if alpha:
        xp = net.backend.xp
        P = buffer.flat_parameters()
        decay = alpha / loss.weight_sum
        G = hooks.weight_decay(G, P, decay, mask)
        W = mask * P
        value = value + (0.5 * decay) * xp.sum(W * W)
    return value, G
