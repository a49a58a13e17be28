"""Losses: `forward(Y, T)` returns the loss as a 0-d array (no host sync) and caches what
`backward()` needs to return dL/dY."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any, ClassVar

from array_api_compat import array_namespace

from . import ops
from .backend import BackendError, backend_of, to_numpy

__all__ = ["LOSSES", "BCELoss", "Loss", "MSELoss", "SSELoss", "SoftmaxCrossEntropyLoss"]

Array = Any


class Loss:
    """Shared checks and caching; subclasses define `_value` and `_gradient`. `reduction` says
    how a batch's value combines its samples: "mean" or "sum" (data-parallel training weighs
    each process's gradient by it)."""

    reduction: ClassVar[str] = "mean"

    def __init__(self) -> None:
        self._cache: tuple[Array, Array, ModuleType] | None = None
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

    def forward(self, Y: Array, T: Array) -> Array:
        if type(Y) is type(T) is self._type and Y.shape == T.shape and Y.dtype == T.dtype:
            self._cache = (Y, T, self._xp)  # the common case: the checks below all pass
            return self._value(Y, T, self._xp)
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
        self._cache = (Y, T, xp)
        return self._value(Y, T, xp)

    def backward(self) -> Array:
        """dL/dY for the last forward."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._gradient(*self._cache)

    def _value(self, Y: Array, T: Array, xp: ModuleType) -> Array:
        raise NotImplementedError

    def _gradient(self, Y: Array, T: Array, xp: ModuleType) -> Array:
        raise NotImplementedError

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


class MSELoss(Loss):
    """mean((Y - T)**2) over all elements; dL/dY = 2 (Y - T) / Y.size."""

    def _value(self, Y, T, xp):
        D = Y - T
        return xp.mean(D * D)

    def _gradient(self, Y, T, xp):
        return (Y - T) * (2.0 / _size(Y))


class BCELoss(Loss):
    """Mean binary cross-entropy of probabilities Y (a sigmoid output) against targets in [0, 1].

    Y is clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon) so log never sees 0.
    Targets outside [0, 1] (or NaN) raise ValueError: their "loss" can be negative and means
    nothing. The check costs a host read of a boolean: once per call, or once per dataset
    inside `checked_targets` (as `fit` and `evaluate` do)."""

    def forward(self, Y: Array, T: Array) -> Array:
        value = super().forward(Y, T)  # shapes, libraries and dtypes checked first
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

    def _clip(self, Y, xp):
        eps = xp.finfo(Y.dtype).eps
        return xp.clip(Y, eps, 1.0 - eps)

    def _value(self, Y, T, xp):
        P = self._clip(Y, xp)
        return -xp.mean(T * xp.log(P) + (1.0 - T) * xp.log(1.0 - P))

    def _gradient(self, Y, T, xp):
        P = self._clip(Y, xp)
        return (P - T) / (P * (1.0 - P)) * (1.0 / _size(Y))


class SoftmaxCrossEntropyLoss(Loss):
    """Mean over the batch of -sum(T * log_softmax(Z)); Z are logits (an "identity" output),
    T one-hot (or probabilities). dL/dZ = (softmax(Z) - T) / batch."""

    def _value(self, Y, T, xp):
        return -xp.sum(T * ops.generic.log_softmax(Y, xp)) * (1.0 / Y.shape[0])

    def _gradient(self, Y, T, xp):
        return (ops.generic.softmax(Y, xp) - T) * (1.0 / Y.shape[0])


def _size(a: Array) -> int:
    n = 1
    for d in a.shape:
        n *= d
    return n


LOSSES: dict[str, type[Loss]] = {
    "sse": SSELoss,
    "mse": MSELoss,
    "bce": BCELoss,
    "softmax_ce": SoftmaxCrossEntropyLoss,
}
