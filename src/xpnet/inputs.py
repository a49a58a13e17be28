"""The data rules of training and inference: what `fit`, `evaluate` and `predict` accept and how
it reaches the net. NumPy data (or lists) is moved to the net's device once, explicitly; the
net's own arrays pass; any other library or device raises, naming both."""

from __future__ import annotations

from typing import Any

import array_api_extra as xpx
import numpy as np

from .backend import Backend, asarray, check_placement, count_nonfinite, index_dtype, to_numpy
from .sequential import Sequential

__all__ = ["check_range", "is_classification", "prepare", "to_net"]

Array = Any


def prepare(net: Sequential, X: Any, T: Any, what: str = "") -> tuple[Array, Array]:
    """Check X, T and move them to the net (NumPy or the net's own arrays are accepted; any
    other library raises rather than being copied): X cast to the net's dtype, 1-D integer
    labels one-hot encoded when the net has more than one output, a 1-D T reshaped to a column."""
    suffix = f" ({what})" if what else ""
    X = to_net(net, X, f"X{suffix}")
    T = to_net(net, T, f"T{suffix}")
    xp = net.backend.xp
    if X.ndim != 2 or X.shape[1] != net.n_in:
        net.check_input(X, f"X{suffix}")
    if X.shape[0] == 0:
        raise ValueError(f"X{suffix} has no samples; give at least one row")
    n_out = net.n_out
    if T.ndim == 1 and n_out > 1:
        T = _one_hot(T, n_out, net)
    elif T.ndim == 1:
        T = xp.reshape(T, (-1, 1))
    if T.shape != (X.shape[0], n_out):
        raise ValueError(
            f"T{suffix} has shape {tuple(T.shape)} but the net needs ({X.shape[0]}, {n_out}): one "
            f"row per sample of X and one column per output (or 1-D integer class labels)"
        )
    for name, a in ((f"X{suffix}", X), (f"T{suffix}", T)):
        bad = count_nonfinite(a, xp)
        if bad:
            raise ValueError(
                f"{name} contains {bad} NaN or infinite values; "
                "clean or impute the data before training"
            )
    return xp.astype(X, net.dtype, copy=False), xp.astype(T, net.dtype, copy=False)


def to_net(net: Sequential, a: Any, what: str) -> Array:
    """NumPy data (or nested lists) is moved to the net's device: an explicit, documented host
    -> device copy, floats cast to the net's dtype on the host, integers kept for label checks.
    The net's own arrays pass; any other library or device raises, naming both."""
    if type(a).__module__ == "numpy" or isinstance(a, list | tuple):
        if getattr(getattr(a, "dtype", None), "kind", "f") == "f":
            with np.errstate(over="ignore"):  # values beyond the dtype: reported next
                moved = asarray(a, like=net)
            if count_nonfinite(moved, net.backend.xp):  # the cast may have made infinities
                check_range(np.asarray(a), net.dtype_name, what)
            return moved
        return net.backend.from_host(a)
    check_placement(a, net.backend, what)
    return a


def check_range(a: np.ndarray, dtype: str, what: str, fix: str = "train in float64") -> None:
    """Refuse finite host values that `dtype` cannot hold (1e40 in float32): the cast would
    turn them into infinities and the data would be blamed for NaN or infinite values it
    does not have."""
    largest = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(a) & (np.abs(a) > largest)
    if beyond.any():
        first = tuple(np.argwhere(beyond)[0])
        where = f"row {first[0]}" + (f", column {first[1]}" if len(first) > 1 else "")
        count = int(beyond.sum())
        raise ValueError(
            f"{what} has {count} finite value{'s' if count > 1 else ''} beyond {dtype}'s range "
            f"(+-{largest:.3g}), e.g. {a[first]:.3g} at {where}; rescale the data or {fix}"
        )


def _one_hot(labels: Array, n_classes: int, net: Sequential) -> Array:
    xp = net.backend.xp
    if xp.isdtype(labels.dtype, "real floating"):
        whole = xp.all(labels == xp.round(labels))
        if not bool(to_numpy(whole)):
            raise ValueError("1-D targets must be integer class labels, got fractional values")
        labels = xp.astype(labels, index_dtype(xp))
    if not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"1-D targets must be integer class labels, got dtype {labels.dtype}")
    lo, hi = int(to_numpy(xp.min(labels))), int(to_numpy(xp.max(labels)))
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"class labels must lie in 0..{n_classes - 1} for a net with {n_classes} outputs, "
            f"got {lo}..{hi}"
        )
    return xpx.one_hot(labels, n_classes, dtype=net.dtype, xp=xp)


def is_classification(T: Array, backend: Backend) -> bool:
    """Targets that are all 0 or 1 (one-hot rows or binary columns) mean classification."""
    xp = backend.xp
    return bool(to_numpy(xp.all((T == 0) | (T == 1))))
