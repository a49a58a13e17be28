"""scikit-learn's MLP losses: xpnet's losses plus what scikit-learn defines on top.

The estimators' nets end in an identity layer: their outputs Z are the last layer's
pre-activations, and a loss here applies scikit-learn's output activation (`out_activation_`:
softmax, logistic, exp or identity) first. Its value is xpnet's weighted loss of the activated
outputs, with scikit-learn's choices of how a sample combines its outputs; its gradient dL/dZ
is scikit-learn's canonical-link one, (activation(Z) - T) * w / sum(w), for every number of
outputs: the gradient of the multi-output squared error is not divided by the number of
outputs, as scikit-learn's is not. Without sample weights both are the weighted forms with unit
weights, as scikit-learn writes them. `objective` adds scikit-learn's L2 term.
"""

from __future__ import annotations

from typing import Any, ClassVar

from array_api_compat import array_namespace

from .. import ops
from ..losses import BCELoss, Loss, SoftmaxCrossEntropyLoss, SSELoss, clip_probabilities
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


class SklearnLoss(Loss):
    """What scikit-learn adds to an xpnet loss: `forward(Z, T, sample_weight=None)` takes the
    raw outputs Z and scores activation(Z); `backward()` returns dL/dZ by the canonical link;
    `penalize` adds the L2 term. Put it first among the bases of a loss."""

    name: ClassVar[str] = ""
    out_activation: ClassVar[str] = ""

    def forward(self, Z: Array, T: Array, sample_weight: Array | None = None) -> Array:
        P = activate(self.out_activation, Z, array_namespace(Z))
        return super().forward(P, T, sample_weight)

    def _value(self, Y: Array, T: Array, xp: Any) -> Array:
        return self._weighted_value(Y, T, None, xp)

    def _gradient(self, Y: Array, T: Array, xp: Any) -> Array:
        return self._weighted_gradient(Y, T, None, xp)

    def _derivative(self, Y: Array, T: Array, xp: Any, count: int) -> Array:
        """activation(Z) - T with respect to Z (not divided by `count`, as in scikit-learn)."""
        return Y - T

    def penalize(
        self, value: Array, G: Array, P: Array, alpha: float, mask: Array
    ) -> tuple[Array, Array]:
        """(value, G) of the last forward with scikit-learn's L2 term added: 0.5 * alpha *
        sum(W**2) / sum(w) over the weights W of flat parameters P (where `mask` is 1), and
        its gradient, as the optimizers' weight-decay hook with factor alpha / sum(w)."""
        decay = alpha / self.weight_sum
        W = mask * P
        value = value + (0.5 * decay) * array_namespace(P).sum(W * W)
        return value, hooks.weight_decay(G, P, decay, mask)


class SquaredError(SklearnLoss, SSELoss):
    """Half the squared error, averaged over the outputs and the samples (scikit-learn's
    squared_loss)."""

    name = "squared_error"
    out_activation = "identity"
    reduction = "mean"
    outputs = "mean"


class Poisson(SklearnLoss):
    """Half the Poisson deviance with an exp output: y log(y / p) - y + p (0 log 0 = 0)."""

    name = "poisson"
    out_activation = "exp"

    def _elements(self, Y, T, xp):
        positive = T > 0
        safe = xp.where(positive, T, xp.ones_like(T))
        return xp.where(positive, T * xp.log(safe / Y), xp.zeros_like(T)) - T + Y


class LogLoss(SklearnLoss, SoftmaxCrossEntropyLoss):
    """Cross-entropy of a softmax over the classes against one-hot targets, from the
    probabilities clipped as scikit-learn clips them (not from log_softmax)."""

    name = "log_loss"
    out_activation = "softmax"

    def _elements(self, Y, T, xp):
        return -(T * xp.log(clip_probabilities(Y, xp)))


class BinaryLogLoss(SklearnLoss, BCELoss):
    """Binary cross-entropy of logistic outputs, summed over the outputs (binary and
    multilabel classification)."""

    name = "binary_log_loss"
    out_activation = "logistic"
    outputs = "sum"


LOSSES: dict[str, type[SklearnLoss]] = {
    cls.name: cls for cls in (SquaredError, Poisson, LogLoss, BinaryLogLoss)
}


def objective(
    net: MLP,
    loss: SklearnLoss,
    X: Array,
    T: Array,
    sample_weight: Array | None,
    alpha: float,
    mask: Array,
) -> tuple[Array, Array]:
    """scikit-learn's objective on one batch and its gradient: (the loss plus its L2 term, a
    0-d array; the gradient as one flat array laid out like the net's parameter buffer).
    `mask` is 1 over the weights of the net's flat parameters (`optim.hooks.weight_mask`)."""
    value = loss.forward(net.forward(X), T, sample_weight)
    net.backward(loss.backward(), input_grad=False)
    buffer = net.parameter_buffer
    G = buffer.flat_gradients()
    if alpha:
        value, G = loss.penalize(value, G, buffer.flat_parameters(), alpha, mask)
    return value, G
