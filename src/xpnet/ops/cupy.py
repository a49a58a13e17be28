"""Fused CuPy kernels for the ops in `generic`.

Each elementwise step is one kernel (`cupy.ElementwiseKernel`): the sigmoid in the split form
of `generic.sigmoid` (the same numerics), its backward `g * y * (1 - y)`, a layer's bias add
and activation in one pass over its product (`bias_<activation>_inplace`), the SSE loss value
as one reduction, and the SGD, momentum and Adam updates in place; erf and erfc (and GELU
through erfc) are `cupyx.scipy.special`'s. Nothing here synchronises with the host. Each
returns what its generic twin returns, to rounding (tested against it where a GPU is present);
an `_inplace` op may overwrite its input, which its caller promises not to read again.

There is no CUDA-graph capture here: CuPy (13.x, 14.2 seen) refuses every cuBLAS call while a
stream is capturing ("calling cuBLAS API during stream capture is currently unsupported"), and
each step multiplies matrices; `ops.torch.capture` records a step on torch-cuda instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import cupy
from cupyx.scipy import special

from . import generic
from .generic import AdamScalars, seed_of

__all__ = [
    "adam_update",
    "bias_identity_inplace",
    "bias_relu_inplace",
    "bias_sigmoid_inplace",
    "bias_tanh_inplace",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "linear_backward",
    "linear_backward_into",
    "momentum_update",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "sse",
    "tanh_backward",
    "tanh_inplace",
    "uniform_source",
]

Array = Any

# each activation as CUDA code from x to y; the sigmoid in generic.sigmoid's split form, the
# relu as generic.relu's `where(x > 0, x, 0)` (NaN to 0 alike)
_ACTIVATION_CODE = {
    "identity": "y = x;",
    "relu": "y = x > T(0) ? x : T(0);",
    "sigmoid": "T e = exp(-fabs(x)); T r = T(1) / (T(1) + e); y = x >= T(0) ? r : e * r;",
    "tanh": "y = tanh(x);",
}
_sigmoid = cupy.ElementwiseKernel("T x", "T y", _ACTIVATION_CODE["sigmoid"], "xpnet_sigmoid")
# y <- activation(y + b), b broadcast along the rows: a layer's product finished in one pass
_BIAS_ACTIVATION = {
    name: cupy.ElementwiseKernel("T b", "T y", "T x = y + b; " + code, f"xpnet_bias_{name}")
    for name, code in _ACTIVATION_CODE.items()
}
_sigmoid_backward = cupy.ElementwiseKernel(
    "T y, T g", "T out", "out = g * y * (T(1) - y)", "xpnet_sigmoid_backward"
)
_tanh_backward = cupy.ElementwiseKernel(
    "T y, T g", "T out", "out = g * (T(1) - y * y)", "xpnet_tanh_backward"
)
_half_sum_of_squares = cupy.ReductionKernel(
    "T d", "T s", "d * d", "a + b", "s = T(0.5) * a", "0", "xpnet_half_sum_of_squares"
)
_sgd = cupy.ElementwiseKernel("T g, T lr", "T p", "p = p - lr * g", "xpnet_sgd")
_momentum = cupy.ElementwiseKernel(
    "T g, T lr, T mu", "T p, T v", "v = mu * v + g; p = p - lr * v", "xpnet_momentum"
)
# after g, the scalars in generic.AdamScalars' order
_adam = cupy.ElementwiseKernel(
    "T g, T step, T b1, T c1, T b2, T c2, T eps, T inv_corr2",
    "T p, T m, T v",
    """
    m = b1 * m + c1 * g;
    v = b2 * v + c2 * (g * g);
    p = p - step * m / (sqrt(v) * inv_corr2 + eps);
    """,
    "xpnet_adam",
)


def _same(a: Any, b: Any) -> bool:
    """Both cupy arrays of one dtype and shape: what the fused kernels take."""
    return type(a) is cupy.ndarray is type(b) and a.dtype == b.dtype and a.shape == b.shape


_FLOATS = (cupy.dtype(cupy.float32), cupy.dtype(cupy.float64))


def _float(a: Any) -> bool:
    """A cupy array of float32 or float64: what the kernels are written for."""
    return type(a) is cupy.ndarray and a.dtype in _FLOATS


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """generic.sigmoid (split form) in one kernel."""
    return _sigmoid(x) if _float(x) else generic.sigmoid(x, xp)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    return _sigmoid(x, x) if _float(x) else generic.sigmoid(x, xp)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * y * (1 - y) in one kernel."""
    if not _same(y, grad):
        return grad * y * (1.0 - y)
    return _sigmoid_backward(y, grad)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    return cupy.tanh(x, out=x)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * (1 - y**2) in one kernel."""
    if not _same(y, grad):
        return grad * (1.0 - y * y)
    return _tanh_backward(y, grad)


def _bias_activation(y: Array, b: Array, name: str, xp: ModuleType) -> Array:
    """activation(y + b) written into y (a layer's fresh product) in one kernel; other inputs
    take the two generic steps."""
    if _float(y) and _float(b) and b.dtype == y.dtype:
        return _BIAS_ACTIVATION[name](b, y)
    y += b
    return getattr(generic, name)(y, xp)


def bias_identity_inplace(y: Array, b: Array, xp: ModuleType) -> Array:
    return _bias_activation(y, b, "identity", xp)


def bias_relu_inplace(y: Array, b: Array, xp: ModuleType) -> Array:
    return _bias_activation(y, b, "relu", xp)


def bias_sigmoid_inplace(y: Array, b: Array, xp: ModuleType) -> Array:
    return _bias_activation(y, b, "sigmoid", xp)


def bias_tanh_inplace(y: Array, b: Array, xp: ModuleType) -> Array:
    return _bias_activation(y, b, "tanh", xp)


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """(x.T @ grad, column sums of grad, grad @ W.T): cuBLAS takes the transposes as flags."""
    db = grad.sum(axis=0) if bias else None
    return x.T @ grad, db, grad @ W.T if input_grad else None


def linear_backward_into(
    x: Array,
    grad: Array,
    W: Array,
    dW: Array,
    db: Array | None,
    input_grad: bool,
    xp: ModuleType,
) -> Array | None:
    """linear_backward with dL/dW and dL/db written into dW and db by `out=`."""
    cupy.matmul(x.T, grad, out=dW)
    if db is not None:
        cupy.sum(grad, axis=0, out=db)
    return grad @ W.T if input_grad else None


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): a subtraction and one reduction kernel."""
    if not (_float(Y) and _same(Y, T)):
        return generic.sse(Y, T, xp)
    D = Y - T
    return _half_sum_of_squares(D), D


def _scalar(p: Array, value: float) -> Any:
    """A Python float as a scalar of p's dtype, so kernels round as the generic code does."""
    return p.dtype.type(value)


def sgd_update(p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array:
    """p <- p - lr * g in one kernel, in place."""
    if not _same(p, g):
        return generic.sgd_update(p, g, lr=lr, xp=xp)
    _sgd(g, _scalar(p, lr), p)
    return p


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    """v <- momentum * v + g, p <- p - lr * v in one kernel, in place."""
    if not (_same(p, g) and _same(v, g)):
        return generic.momentum_update(p, g, v, lr=lr, momentum=momentum, xp=xp)
    _momentum(g, _scalar(p, lr), _scalar(p, momentum), p, v)
    return p, v


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """generic.adam_update in one kernel, p, m and v in place."""
    if not (_same(p, g) and _same(m, g) and _same(v, g)):
        return generic.adam_update(p, g, m, v, scalars, xp=xp)
    _adam(g, *(_scalar(p, s) for s in scalars), p, m, v)
    return p, m, v


def uniform_source(
    entropy: Sequence[int], like: Array, xp: ModuleType
) -> Callable[[tuple[int, ...]], Array]:
    """generic.uniform_source drawn on like's GPU by cupy's Generator seeded from `entropy`
    (no host round trip)."""
    with like.device:
        generator = cupy.random.default_rng(seed_of(entropy))

    def draw(shape: tuple[int, ...]) -> Array:
        with like.device:
            return generator.random(shape, dtype=like.dtype)

    return draw


def erf(x: Array, xp: ModuleType) -> Array:
    return special.erf(x)


def erfc(x: Array, xp: ModuleType) -> Array:
    return special.erfc(x)


_SQRT_HALF = math.sqrt(0.5)


def _normal_cdf(x: Array) -> Array:
    """Phi(x) = erfc(-x / sqrt(2)) / 2 with CuPy's erfc, as generic.gelu takes it."""
    return 0.5 * special.erfc(-_SQRT_HALF * x)


def gelu(x: Array, xp: ModuleType) -> Array:
    return generic.gelu_from_cdf(x, _normal_cdf(x))


def gelu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    return generic.gelu_backward_from_cdf(x, _normal_cdf(x), grad, xp)
