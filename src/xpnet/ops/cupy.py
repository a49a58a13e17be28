"""Fused CuPy kernels for the ops in `generic`, compiled from the CUDA text of cuda_code.py.

Each elementwise step is one kernel (`cupy.ElementwiseKernel`): the sigmoid in the split form
of `generic.sigmoid` (the same numerics), its backward `g * y * (1 - y)`, a layer's bias add
and activation in one pass over its product (`bias_<activation>_inplace`), the SSE loss value
as one reduction, and the SGD, momentum and Adam updates in place; dropout (alone, and after a
bias add and activation, whose backward it then takes in one pass too); LayerNorm forward and
backward and softmax cross-entropy's value and gradient as row kernels (a warp per row); an
activation's backward with its bias gradient (column sums) in one kernel; erf and erfc (and GELU
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
import numpy
from cupyx.scipy import special

from . import cuda_code as code
from . import generic
from .generic import AdamScalars, seed_of

__all__ = [
    "adam_update",
    "bias_identity_dropout_inplace",
    "bias_identity_inplace",
    "bias_relu_dropout_inplace",
    "bias_relu_inplace",
    "bias_sigmoid_dropout_inplace",
    "bias_sigmoid_inplace",
    "bias_tanh_dropout_inplace",
    "bias_tanh_inplace",
    "dropout",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "identity_backward_bias_grad",
    "identity_dropout_backward",
    "layer_norm",
    "layer_norm_backward",
    "linear_backward",
    "linear_backward_into",
    "momentum_update",
    "relu_backward_bias_grad",
    "relu_dropout_backward",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_backward_bias_grad",
    "sigmoid_dropout_backward",
    "sigmoid_inplace",
    "softmax_cross_entropy",
    "sse",
    "tanh_backward",
    "tanh_backward_bias_grad",
    "tanh_dropout_backward",
    "tanh_inplace",
    "uniform_source",
]

Array = Any

_kernel = cupy.ElementwiseKernel
_sigmoid = _kernel(*code.SIGMOID)
_BIAS_ACTIVATION = {name: _kernel(*code.bias_activation(name)) for name in code.FUSED_ACTIVATIONS}
_BACKWARD = {name: _kernel(*code.activation_backward(name)) for name in code.FUSED_ACTIVATIONS}
_BIAS_ACTIVATION_DROPOUT = {
    name: _kernel(*code.bias_activation_dropout(name)) for name in code.FUSED_ACTIVATIONS
}
_DROPOUT_BACKWARD = {name: _kernel(*code.dropout_backward(name)) for name in code.FUSED_ACTIVATIONS}
_dropout = _kernel(*code.dropout())
_half_sum_of_squares = cupy.ReductionKernel(*code.HALF_SUM_OF_SQUARES)
_sgd = _kernel(*code.SGD)
_momentum = _kernel(*code.MOMENTUM)
_adam = _kernel(*code.ADAM)
_ROW_MODULES: dict[str, Any] = {}  # C type -> cupy.RawModule of code.row_source, compiled once


def _row_kernel(name: str, dtype: Any) -> Any:
    """The row kernel `name` of code.row_source for arrays of dtype (float32 or float64)."""
    ctype = "float" if dtype == cupy.float32 else "double"
    module = _ROW_MODULES.get(ctype)
    if module is None:
        module = _ROW_MODULES[ctype] = cupy.RawModule(code=code.row_source(ctype))
    return module.get_function(name)


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
    return _BACKWARD["sigmoid"](y, grad)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    return cupy.tanh(x, out=x)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * (1 - y**2) in one kernel."""
    if not _same(y, grad):
        return grad * (1.0 - y * y)
    return _BACKWARD["tanh"](y, grad)


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


def dropout(x: Array, u: Array, p: float, xp: ModuleType) -> tuple[Array, Array]:
    """generic.dropout in one kernel: the mask and x * mask both written in one pass."""
    if not (_float(x) and _same(x, u)):
        return generic.dropout(x, u, p, xp)
    return _dropout(u, x, _scalar(x, p), _scalar(x, 1.0 / (1.0 - p)))


def _bias_activation_dropout(
    y: Array, b: Array, u: Array, p: float, name: str, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """(activation(y + b) written into y, then out and mask of dropout(that, u, p)) in one
    kernel: a Linear -> activation -> Dropout block after its product."""
    if _float(y) and _same(y, u) and _float(b) and b.dtype == y.dtype:
        # CuPy takes all of a kernel's outputs or none: y is written in place, so all
        out, mask = cupy.empty_like(y), cupy.empty_like(y)
        scale = _scalar(y, 1.0 / (1.0 - p))
        _BIAS_ACTIVATION_DROPOUT[name](b, u, _scalar(y, p), scale, y, out, mask)
        return y, out, mask
    y = _bias_activation(y, b, name, xp)
    return (y, *generic.dropout(y, u, p, xp))


def bias_identity_dropout_inplace(
    y: Array, b: Array, u: Array, p: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    return _bias_activation_dropout(y, b, u, p, "identity", xp)


def bias_relu_dropout_inplace(
    y: Array, b: Array, u: Array, p: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    return _bias_activation_dropout(y, b, u, p, "relu", xp)


def bias_sigmoid_dropout_inplace(
    y: Array, b: Array, u: Array, p: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    return _bias_activation_dropout(y, b, u, p, "sigmoid", xp)


def bias_tanh_dropout_inplace(
    y: Array, b: Array, u: Array, p: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    return _bias_activation_dropout(y, b, u, p, "tanh", xp)


def _dropout_backward(y: Array, mask: Array, grad: Array, name: str, xp: ModuleType) -> Array:
    """The activation's backward of grad * mask (Dropout's backward) in one kernel."""
    if _float(y) and _same(y, mask) and _same(y, grad):
        return _DROPOUT_BACKWARD[name](y, mask, grad)
    return getattr(generic, f"{name}_backward")(y, grad * mask, xp)


def identity_dropout_backward(y: Array, mask: Array, grad: Array, xp: ModuleType) -> Array:
    return _dropout_backward(y, mask, grad, "identity", xp)


def relu_dropout_backward(y: Array, mask: Array, grad: Array, xp: ModuleType) -> Array:
    return _dropout_backward(y, mask, grad, "relu", xp)


def sigmoid_dropout_backward(y: Array, mask: Array, grad: Array, xp: ModuleType) -> Array:
    return _dropout_backward(y, mask, grad, "sigmoid", xp)


def tanh_dropout_backward(y: Array, mask: Array, grad: Array, xp: ModuleType) -> Array:
    return _dropout_backward(y, mask, grad, "tanh", xp)


def _rows(*arrays: Array) -> bool:
    """C-contiguous 2-D float cupy arrays of one dtype and shape, none empty: what the row
    kernels take (a launch needs a block per row or column, and CUDA refuses a grid of none)."""
    first = arrays[0]
    return (
        _float(first)
        and first.ndim == 2
        and first.size > 0
        and all(_same(a, first) and a.flags.c_contiguous for a in arrays)
    )


def _vector(v: Array, like: Array) -> bool:
    """A contiguous cupy vector of like's dtype, one entry per column of like."""
    fits = type(v) is cupy.ndarray and v.dtype == like.dtype and v.shape == like.shape[1:]
    return fits and v.flags.c_contiguous


def layer_norm(
    x: Array, gamma: Array, beta: Array, eps: float, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """generic.layer_norm as one row kernel: a warp per row, its statistics by shuffles."""
    if not (_rows(x) and _vector(gamma, x) and _vector(beta, x)):
        return generic.layer_norm(x, gamma, beta, eps, xp)
    rows, cols = x.shape
    y, x_hat = cupy.empty_like(x), cupy.empty_like(x)
    inv_std = cupy.empty((rows, 1), dtype=x.dtype)
    args = (x, gamma, beta, _scalar(x, eps), numpy.int32(cols), y, x_hat, inv_std)
    _row_kernel("xpnet_layer_norm", x.dtype)((rows,), (code.WARP,), args)
    return y, x_hat, inv_std


def layer_norm_backward(
    grad: Array, x_hat: Array, inv_std: Array, gamma: Array, xp: ModuleType
) -> Array:
    """generic.layer_norm_backward as one row kernel."""
    ok = _rows(grad, x_hat) and _vector(gamma, grad) and _same(inv_std, grad[:, :1])
    if not (ok and inv_std.flags.c_contiguous):
        return generic.layer_norm_backward(grad, x_hat, inv_std, gamma, xp)
    rows, cols = grad.shape
    dx = cupy.empty_like(grad)
    args = (grad, x_hat, inv_std, gamma, numpy.int32(cols), dx)
    _row_kernel("xpnet_layer_norm_backward", grad.dtype)((rows,), (code.WARP,), args)
    return dx


def softmax_cross_entropy(Z: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """generic.softmax_cross_entropy as one row kernel (each row's loss and gradient) and
    one sum over the rows."""
    if not _rows(Z, T):
        return generic.softmax_cross_entropy(Z, T, xp)
    rows, cols = Z.shape
    grad = cupy.empty_like(Z)
    row_loss = cupy.empty(rows, dtype=Z.dtype)
    args = (Z, T, _scalar(Z, 1.0 / rows), numpy.int32(cols), grad, row_loss)
    _row_kernel("xpnet_softmax_cross_entropy", Z.dtype)((rows,), (code.WARP,), args)
    return row_loss.sum(), grad


def _backward_bias_grad(
    y: Array, grad: Array, mask: Array | None, db: Array, name: str, xp: ModuleType
) -> Array:
    """dL/dx of the activation from its output y and grad (times Dropout's mask where one is
    given), with its column sums (the bias gradient of the Linear before it) written into db,
    in one kernel."""
    fits = _rows(y, grad) and (mask is None or _rows(mask, y)) and _vector(db, y)
    if not fits:
        dx = getattr(generic, f"{name}_backward")(y, grad if mask is None else grad * mask, xp)
        db[...] = xp.sum(dx, axis=0)
        return dx
    rows, cols = y.shape
    dx = cupy.empty_like(y)
    has_mask = numpy.int32(mask is not None)
    args = (
        y,
        grad,
        grad if mask is None else mask,
        has_mask,
        numpy.int32(rows),
        numpy.int32(cols),
        dx,
        db,
    )
    _row_kernel(code.backward_bias_kernel_name(name), y.dtype)((cols,), (code.WARP,), args)
    return dx


def identity_backward_bias_grad(
    y: Array, grad: Array, mask: Array | None, db: Array, xp: ModuleType
) -> Array:
    return _backward_bias_grad(y, grad, mask, db, "identity", xp)


def relu_backward_bias_grad(
    y: Array, grad: Array, mask: Array | None, db: Array, xp: ModuleType
) -> Array:
    return _backward_bias_grad(y, grad, mask, db, "relu", xp)


def sigmoid_backward_bias_grad(
    y: Array, grad: Array, mask: Array | None, db: Array, xp: ModuleType
) -> Array:
    return _backward_bias_grad(y, grad, mask, db, "sigmoid", xp)


def tanh_backward_bias_grad(
    y: Array, grad: Array, mask: Array | None, db: Array, xp: ModuleType
) -> Array:
    return _backward_bias_grad(y, grad, mask, db, "tanh", xp)


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
