"""Losses: `forward(Y, T, sample_weight=None)` returns the loss as a 0-d array (no host sync)
and caches what `backward()` needs to return dL/dY.

With sample weights w (one per row), sample i's loss l_i counts w_i times: a mean loss is
sum_i w_i l_i / sum_i w_i, a summed one sum_i w_i l_i, and unit weights give the unweighted
value. A sample's loss combines its outputs' elements by sum or, for `outputs = "mean"`, by
their mean, so that unit weights give MSELoss and BCELoss their mean over all elements."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from types import ModuleType
from typing import Any, ClassVar

from array_api_compat import array_namespace

from . import ops
from .backend import BackendError, backend_of, to_numpy

__all__ = [
    "LOSSES",
    "BCELoss",
    "Loss",
    "MSELoss",
    "SSELoss",
    "SoftmaxCrossEntropyLoss",
    "clip_probabilities",
]

Array = Any


class Loss:
    """Shared checks, sample weights and caching. A subclass defines `_elements` (the loss of
    each output of each sample) and `_derivative` (the gradient of their sum over `count`),
    from which the weighted loss follows, and `_value`, the unweighted loss in its fastest
    form. `reduction` says how a batch's value combines its samples: "mean" or "sum"
    (data-parallel training weighs each process's gradient by it); `outputs` how a sample's
    loss combines its outputs' elements."""

    reduction: ClassVar[str] = "mean"
    outputs: ClassVar[str] = "sum"

    def __init__(self) -> None:
        self._cache: tuple[Array, Array, ModuleType] | None = None
        self._weights: Array | None = None  # the last forward's weights as a column, or None
        self.weight_sum: Any = 0  # the last forward's sum of weights (its rows without them)
        self._type: Any = None  # the array type whose namespace and ops are kept
        self._xp: Any = None
        self._ops: Any = ops.generic
        self._targets_checked = False  # inside `checked_targets`: skip per-call target checks

    def check_targets(self, T: Array) -> None:
        """Raise ValueError for targets this loss cannot score (none here; BCE: outside [0, 1])."""

    @contextlib.contextmanager
    def checked_targets(self, *targets: Array) -> Iterator[None]:
        """Check whole target arrays once (a host read), then let every forward inside the
        block skip that check: `fit` and `evaluate` score batches of data checked up front,
        so a step stays free of host round trips."""
        for T in targets:
            self.check_targets(T)
        outer, self._targets_checked = self._targets_checked, True
        try:
            yield
        finally:
            self._targets_checked = outer

    def forward(self, Y: Array, T: Array, sample_weight: Array | None = None) -> Array:
        """The loss of outputs Y against targets T (both (batch, outputs)), each row weighted
        by `sample_weight` (batch,) when given."""
        if type(Y) is type(T) is self._type and Y.shape == T.shape and Y.dtype == T.dtype:
            xp = self._xp  # the common case: the checks below all pass
        else:
            xp = self._checked(Y, T)
        if sample_weight is None:
            self._cache, self._weights, self.weight_sum = (Y, T, xp), None, Y.shape[0]
            return self._value(Y, T, xp)
        column = (-1,) + (1,) * (len(Y.shape) - 1)
        self._weights = xp.reshape(self._checked_weights(sample_weight, Y), column)
        self._cache, self.weight_sum = (Y, T, xp), xp.sum(sample_weight)
        return self._weighted_value(Y, T, self._weights, xp)

    def _checked(self, Y: Array, T: Array) -> ModuleType:
        """The namespace of Y, after checking that T matches Y's shape, library and dtype."""
        if getattr(Y, "shape", None) != getattr(T, "shape", None):
            raise ValueError(
                f"targets have shape {tuple(getattr(T, 'shape', ()))} but the outputs have shape "
                f"{tuple(Y.shape)}; give one target row per sample with one column per output "
                "(one-hot encode class labels)"
            )
        if type(Y) is not type(T):
            backend_of(Y, T)  # raises, naming both libraries
        xp = array_namespace(Y)
        if T.dtype != Y.dtype:
            raise BackendError(
                f"targets have dtype {T.dtype} but the outputs have {Y.dtype}; "
                "convert them with xpnet.asarray(T, like=net)"
            )
        self._type, self._xp, self._ops = type(Y), xp, ops.ops_for(xp)
        return xp

    @staticmethod
    def _checked_weights(w: Array, Y: Array) -> Array:
        """w, after checking that it holds one weight per row of Y, in Y's library and dtype."""
        if type(w) is not type(Y):
            backend_of(Y, w)  # raises, naming both libraries
        if tuple(getattr(w, "shape", ())) != (Y.shape[0],):
            raise ValueError(
                f"sample_weight has shape {tuple(getattr(w, 'shape', ()))} but the batch has "
                f"{Y.shape[0]} samples; give one weight per sample"
            )
        if w.dtype != Y.dtype:
            raise BackendError(
                f"sample_weight has dtype {w.dtype} but the outputs have {Y.dtype}; "
                "convert it with xpnet.asarray(w, like=net)"
            )
        return w

    def backward(self) -> Array:
        """dL/dY for the last forward."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if self._weights is None:
            return self._gradient(*self._cache)
        Y, T, xp = self._cache
        return self._weighted_gradient(Y, T, self._weights, xp)

    def _value(self, Y: Array, T: Array, xp: ModuleType) -> Array:
        """The unweighted loss."""
        raise NotImplementedError

    def _gradient(self, Y: Array, T: Array, xp: ModuleType) -> Array:
        """The unweighted dL/dY: the elements' gradient over as many as the loss averages."""
        count = self._per_sample(Y)
        return self._derivative(Y, T, xp, count * Y.shape[0] if self.reduction == "mean" else count)

    def _per_sample(self, Y: Array) -> int:
        """How many elements a sample's loss averages: its outputs, or 1 for a sum."""
        return math.prod(Y.shape[1:]) if self.outputs == "mean" else 1

    def _elements(self, Y: Array, T: Array, xp: ModuleType) -> Array:
        """The loss of each output of each sample, shaped like Y."""
        raise NotImplementedError

    def _derivative(self, Y: Array, T: Array, xp: ModuleType, count: int) -> Array:
        """The gradient of the sum of `_elements` over `count`, with respect to Y."""
        raise NotImplementedError

    def _weighted_value(self, Y: Array, T: Array, w: Array | None, xp: ModuleType) -> Array:
        """sum_i w_i l_i (over `weight_sum` for a mean loss); w a column, None for unit weights."""
        E = self._elements(Y, T, xp)
        value = xp.sum(E if w is None else E * w)
        if self.outputs == "mean":
            value = value / self._per_sample(Y)
        return value / self.weight_sum if self.reduction == "mean" else value

    def _weighted_gradient(self, Y: Array, T: Array, w: Array | None, xp: ModuleType) -> Array:
        """The gradient of `_weighted_value`: each sample's gradient times its weight."""
        G = self._derivative(Y, T, xp, self._per_sample(Y))
        if w is not None:
            G = G * w
        return G / self.weight_sum if self.reduction == "mean" else G

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SSELoss(Loss):
    """0.5 * sum((Y - T)**2): the seeds' error; dL/dY = Y - T.

    forward keeps Y - T, and the first backward after it returns that array."""

    reduction = "sum"

    def __init__(self) -> None:
        super().__init__()
        self._diff: Array = None

    def _value(self, Y, T, xp):
        value, self._diff = self._ops.sse(Y, T, xp)
        return value

    def _gradient(self, Y, T, xp):
        D, self._diff = self._diff, None
        return Y - T if D is None else D

    def _elements(self, Y, T, xp):
        D = Y - T
        return 0.5 * (D * D)

    def _derivative(self, Y, T, xp, count):
        return Y - T  # count is 1: a sum over samples and outputs


class MSELoss(Loss):
    """mean((Y - T)**2) over all elements; dL/dY = 2 (Y - T) / Y.size."""

    outputs = "mean"

    def _value(self, Y, T, xp):
        return xp.mean(self._elements(Y, T, xp))

    def _elements(self, Y, T, xp):
        D = Y - T
        return D * D

    def _derivative(self, Y, T, xp, count):
        return (Y - T) * (2.0 / count)


def clip_probabilities(P: Array, xp: ModuleType) -> Array:
    """P clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon), so log never sees 0."""
    eps = xp.finfo(P.dtype).eps
    return xp.clip(P, eps, 1.0 - eps)


class BCELoss(Loss):
    """Mean binary cross-entropy of probabilities Y (a sigmoid output) against targets in [0, 1].

    Y is clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon) so log never sees 0.
    Targets outside [0, 1] (or NaN) raise ValueError: their "loss" can be negative and means
    nothing. The check costs a host read of a boolean: once per call, or once per dataset
    inside `checked_targets` (as `fit` and `evaluate` do)."""

    outputs = "mean"

    def forward(self, Y: Array, T: Array, sample_weight: Array | None = None) -> Array:
        value = super().forward(Y, T, sample_weight)  # shapes, libraries and dtypes checked first
        if not self._targets_checked:
            try:
                self.check_targets(T)
            except ValueError:
                self._cache = None
                raise
        return value

    def check_targets(self, T: Array) -> None:
        xp = array_namespace(T)
        if not bool(to_numpy(xp.all((T >= 0.0) & (T <= 1.0)))):
            lo, hi = float(to_numpy(xp.min(T))), float(to_numpy(xp.max(T)))
            raise ValueError(
                f"BCELoss needs targets in [0, 1] (0/1 labels or probabilities), got values "
                f"from {lo:g} to {hi:g}; for class labels use SoftmaxCrossEntropyLoss with "
                "one-hot targets, for other values MSELoss"
            )

    def _value(self, Y, T, xp):
        return xp.mean(self._elements(Y, T, xp))

    def _elements(self, Y, T, xp):
        P = clip_probabilities(Y, xp)
        return -(T * xp.log(P) + (1.0 - T) * xp.log(1.0 - P))

    def _derivative(self, Y, T, xp, count):
        P = clip_probabilities(Y, xp)
        return (P - T) / (P * (1.0 - P)) * (1.0 / count)


class SoftmaxCrossEntropyLoss(Loss):
    """Mean over the batch of -sum(T * log_softmax(Z)); Z are logits (an "identity" output),
    T one-hot (or probabilities). dL/dZ = (softmax(Z) - T) / batch, computed with the value
    (ops.softmax_cross_entropy) and returned by the first backward after it. A single output is
    refused (its softmax is 1 whatever the net does: loss 0, nothing learnt), and so are
    targets whose rows do not sum to 1 (checked once per dataset in `fit` and `evaluate`)."""

    def forward(self, Y: Array, T: Array, sample_weight: Array | None = None) -> Array:
        if len(Y.shape) == 2 and Y.shape[1] == 1:
            raise ValueError(
                "SoftmaxCrossEntropyLoss needs at least 2 outputs: the softmax of one output is "
                "always 1, so the loss is 0 and nothing is learnt; for two classes use one "
                "sigmoid output with BCELoss, or two outputs with one-hot targets"
            )
        return super().forward(Y, T, sample_weight)

    def check_targets(self, T: Array) -> None:
        xp = array_namespace(T)
        if len(T.shape) != 2 or T.shape[1] < 2:
            return  # forward says what is wrong with one output
        sums = xp.sum(T, axis=1)
        tolerance = 16 * float(xp.finfo(T.dtype).eps) * T.shape[1]
        worst = float(to_numpy(xp.max(xp.abs(sums - 1.0))))
        if not worst <= tolerance:
            raise ValueError(
                "SoftmaxCrossEntropyLoss needs target rows that sum to 1 (one-hot labels or "
                f"probabilities), but a row is off by {worst:.3g}; normalize the rows, or use "
                "BCELoss for independent 0/1 targets"
            )

    def __init__(self) -> None:
        super().__init__()
        self._grad: Array = None

    def _value(self, Y, T, xp):
        value, self._grad = self._ops.softmax_cross_entropy(Y, T, xp)  # CuPy: one row kernel
        return value

    def _gradient(self, Y, T, xp):
        G, self._grad = self._grad, None
        return self._derivative(Y, T, xp, Y.shape[0]) if G is None else G

    def _elements(self, Y, T, xp):
        return -(T * ops.generic.log_softmax(Y, xp))

    def _derivative(self, Y, T, xp, count):
        return (ops.generic.softmax(Y, xp) - T) * (1.0 / count)


LOSSES: dict[str, type[Loss]] = {
    "sse": SSELoss,
    "mse": MSELoss,
    "bce": BCELoss,
    "softmax_ce": SoftmaxCrossEntropyLoss,
}
