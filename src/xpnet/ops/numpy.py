"""Fused, in-place NumPy versions of the ops in `generic`.

The classic NumPy step allocates a new array for every `*` and `-`; these write into the
matmul's output, a single fresh result or the parameter itself, with `out=`, so a step moves
fewer bytes and makes fewer calls. Each returns what its generic twin returns, to rounding
(tested against it); an `_inplace` op may overwrite its input, which its caller promises not
to read again. Arguments these fast paths do not cover (other dtypes, read-only or
non-contiguous parameters) go to the generic version.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from . import generic
from .generic import AdamScalars

__all__ = [
    "adam_update",
    "linear_backward",
    "linear_backward_into",
    "momentum_update",
    "relu_backward",
    "relu_inplace",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "sse",
    "tanh_backward",
    "tanh_inplace",
]

Array = Any

# exp(x) is finite for x below log(max float): clipping there keeps exp from overflowing (no
# warning); u / (1 + u) is 1 in the dtype's precision long before that.
_EXP_LIMIT = {np.dtype(t): float(np.log(np.finfo(t).max)) - 0.01 for t in (np.float32, np.float64)}

# Arrays from this many elements on compute the sigmoid under np.errstate (see _sigmoid_into):
# the two forms were measured equally fast at 8192-16384 float32 elements.
_ERRSTATE_FROM = 8192

# Parameters larger than this many elements are updated block by block through a scratch
# buffer that stays in cache, instead of through a temporary as large as the parameter.
_BLOCK = 1 << 15

# `g @ W.T` with W.T a transposed view was measured 2-3x slower than with a C-contiguous copy
# on OpenBLAS 0.3.31 for W from 128 x 10 to 256 x 256 (benchmarks/RESULTS.md); the copy
# costs one pass over W, small next to the product there, and a call, which tiny W can't
# pay back. W.size in [low, high) takes the copy.
_COPY_WT = (256, 1 << 20)


def _float(a: Any) -> bool:
    return type(a) is np.ndarray and a.dtype in _EXP_LIMIT


def _sigmoid_into(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """1 / (1 + exp(-x)) into `out` (a new array when None), with no overflow warning.

    Small arrays, where each NumPy call's overhead is the cost, take u / (1 + u) with
    u = exp(min(x, limit)): four calls, exp never overflows, and u / (1 + u) keeps the lower
    tail as the split form does (u itself). Larger ones take 1 / (1 + exp(-x)) and let exp(-x)
    overflow to inf (1 / inf = 0) under np.errstate, whose fixed ~2 us is cheaper there than
    np.minimum's pass (~0.6 ns per element) and a division (slower than a reciprocal)."""
    if x.size < _ERRSTATE_FROM:
        u = np.minimum(x, _EXP_LIMIT[x.dtype], out=out)
        np.exp(u, out=u)
        return np.divide(u, u + 1.0, out=u)
    out = np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """generic.sigmoid in one fresh array."""
    if type(x) is not np.ndarray or x.dtype not in _EXP_LIMIT:
        return generic.sigmoid(x, xp)
    return _sigmoid_into(x, None)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    """sigmoid(x) written over x (a matmul output nobody else holds)."""
    if type(x) is not np.ndarray or x.dtype not in _EXP_LIMIT or not x.flags.writeable:
        return generic.sigmoid(x, xp)
    return _sigmoid_into(x, x)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * y * (1 - y) into one fresh array: (1 - y), times y, times grad, in place."""
    if (
        type(y) is not np.ndarray
        or type(grad) is not np.ndarray
        or grad.dtype != y.dtype
        or grad.shape != y.shape
    ):
        return generic.sigmoid_backward(y, grad, xp)
    out = np.subtract(1.0, y)
    out *= y
    out *= grad
    return out


def relu_inplace(x: Array, xp: ModuleType) -> Array:
    """max(x, 0) written over x."""
    if not (_float(x) and x.flags.writeable):
        return generic.relu(x, xp)
    return np.maximum(x, 0.0, out=x)


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad where y > 0, else 0, as grad * (y > 0): a comparison and a multiply, measured
    7-9x faster than `where` on 128 x 256 float32 (a NaN in grad stays NaN where y <= 0)."""
    if not (_float(y) and type(grad) is np.ndarray and grad.dtype == y.dtype):
        return generic.relu_backward(y, grad, xp)
    return np.multiply(grad, y > 0, dtype=y.dtype)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    if not (_float(x) and x.flags.writeable):
        return generic.tanh(x, xp)
    return np.tanh(x, out=x)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * (1 - y**2) into one fresh array."""
    if type(y) is not np.ndarray or type(grad) is not np.ndarray or grad.shape != y.shape:
        return generic.tanh_backward(y, grad, xp)
    out = np.multiply(y, y, dtype=np.result_type(y, grad))
    np.subtract(1.0, out, out=out)
    out *= grad
    return out


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """generic.linear_backward with the column sum as one ufunc reduction and grad @ W.T
    through a contiguous copy of W.T where OpenBLAS is slow on the transposed view."""
    db = np.add.reduce(grad, axis=0) if bias else None
    return x.T @ grad, db, _input_grad(grad, W) if input_grad else None


def linear_backward_into(
    x: Array, grad: Array, W: Array, dW: Array, db: Array | None, input_grad: bool, xp: ModuleType
) -> Array | None:
    """linear_backward writing dL/dW into dW and dL/db into db (given by the caller, e.g. views
    of a net's flat gradient buffer); returns dL/dx, or None unless `input_grad`."""
    np.matmul(x.T, grad, out=dW)
    if db is not None:
        np.add.reduce(grad, axis=0, out=db)
    return _input_grad(grad, W) if input_grad else None


def _input_grad(grad: np.ndarray, W: np.ndarray) -> np.ndarray:
    """grad @ W.T, through a contiguous copy of W.T where that was measured faster."""
    if _COPY_WT[0] <= W.size < _COPY_WT[1] and type(W) is np.ndarray:
        return grad @ np.ascontiguousarray(W.T)
    return grad @ W.T


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): one subtraction and one dot product."""
    if not (_float(Y) and type(T) is np.ndarray and T.dtype == Y.dtype and T.shape == Y.shape):
        return generic.sse(Y, T, xp)
    D = np.subtract(Y, T)
    return 0.5 * np.vdot(D, D), D


def _updatable(p: Array) -> bool:
    """p can take an in-place update (g and the state come from the same net)."""
    return type(p) is np.ndarray and p.flags.writeable


def _subtract_scaled(p: np.ndarray, g: np.ndarray, lr: float) -> None:
    """p -= lr * g for a large p, block by block through a cache-sized scratch buffer instead
    of one temporary as large as p (the same two roundings)."""
    pf, gf = p.reshape(-1), g.reshape(-1)
    scratch = np.empty(_BLOCK, dtype=p.dtype)
    for start in range(0, pf.size, _BLOCK):
        stop = min(start + _BLOCK, pf.size)
        tmp = scratch[: stop - start]
        np.multiply(gf[start:stop], lr, out=tmp)
        np.subtract(pf[start:stop], tmp, out=pf[start:stop])


def _blockwise(p: np.ndarray, g: np.ndarray) -> bool:
    return p.size > _BLOCK and p.flags.c_contiguous and g.flags.c_contiguous


def sgd_update(p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array:
    """p - lr * g, written into p."""
    if type(p) is not np.ndarray or not p.flags.writeable:
        return generic.sgd_update(p, g, lr=lr, xp=xp)
    if _blockwise(p, g):
        _subtract_scaled(p, g, lr)
    else:
        p -= lr * g
    return p


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    """v <- momentum * v + g and p <- p - lr * v, both in place."""
    if not (_updatable(p) and _updatable(v)):
        return generic.momentum_update(p, g, v, lr=lr, momentum=momentum, xp=xp)
    v *= momentum
    v += g
    if _blockwise(p, v):
        _subtract_scaled(p, v, lr)
    else:
        p -= lr * v
    return p, v


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """generic.adam_update with p, m and v updated in place and two temporaries (per block of
    a large p, so that they stay small: a net's flat array is one large p)."""
    if not (_updatable(p) and _updatable(m) and _updatable(v)):
        return generic.adam_update(p, g, m, v, scalars, xp=xp)
    if _blockwise(p, g) and m.flags.c_contiguous and v.flags.c_contiguous:
        pf, gf, mf, vf = (a.reshape(-1) for a in (p, g, m, v))
        for start in range(0, pf.size, _BLOCK):
            block = slice(start, start + _BLOCK)
            _adam_into(pf[block], gf[block], mf[block], vf[block], scalars)
    else:
        _adam_into(p, g, m, v, scalars)
    return p, m, v


def _adam_into(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, s: AdamScalars) -> None:
    tmp = np.multiply(g, s.one_minus_beta1)
    m *= s.beta1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp *= s.one_minus_beta2
    v *= s.beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= s.inv_correction2
    tmp += s.eps
    update = np.multiply(m, s.step)
    update /= tmp
    p -= update
