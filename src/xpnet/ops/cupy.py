"""Fused CuPy kernels for the ops in `generic`, and CUDA-graph capture of a whole step.

Each elementwise step is one kernel (`cupy.ElementwiseKernel`): the sigmoid in the split form
of `generic.sigmoid` (the same numerics), its backward `g * y * (1 - y)`, the bias add, the
SSE loss value as one reduction, and the SGD, momentum and Adam updates in place. Nothing
here synchronises with the host. Each returns what its generic twin returns, to rounding
(tested against it where a GPU is present); an `_inplace` op may overwrite its input, which
its caller promises not to read again.

For small nets, where launch overhead dominates, `capture(step)` records a whole training
step in a CUDA graph and returns a function that replays it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import cupy

from . import generic

__all__ = [
    "adam_update",
    "capture",
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
]

Array = Any

_sigmoid = cupy.ElementwiseKernel(
    "T x",
    "T y",
    """
    T e = exp(-fabs(x));
    T r = T(1) / (T(1) + e);
    y = x >= T(0) ? r : e * r;
    """,
    "xpnet_sigmoid",
)
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


def sgd_update(p: Array, g: Array, *, lr: float, xp: ModuleType) -> Array:
    """p <- p - lr * g in one kernel, in place."""
    if not _same(p, g):
        return generic.sgd_update(p, g, lr=lr, xp=xp)
    _sgd(g, _scalar(p, lr), p)
    return p


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: float, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    """v <- momentum * v + g, p <- p - lr * v in one kernel, in place."""
    if not (_same(p, g) and _same(v, g)):
        return generic.momentum_update(p, g, v, lr=lr, momentum=momentum, xp=xp)
    _momentum(g, _scalar(p, lr), _scalar(p, momentum), p, v)
    return p, v


def adam_update(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
    xp: ModuleType,
) -> tuple[Array, Array, Array]:
    """generic.adam_update in one kernel, p, m and v in place."""
    if not (_same(p, g) and _same(m, g) and _same(v, g)):
        return generic.adam_update(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, t=t, xp=xp)
    step, inv_correction2 = generic.adam_scalars(lr, beta1, beta2, t)
    scalars = (step, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, inv_correction2)
    _adam(g, *(_scalar(p, s) for s in scalars), p, m, v)
    return p, m, v


class _Replay:
    """A captured step: calling it launches the graph and returns the captured result."""

    def __init__(self, graph: Any, stream: Any, pool: Any, result: Any) -> None:
        self.graph, self.stream, self.result = graph, stream, result
        self.pool = pool  # the graph's memory lives as long as the graph

    def __call__(self) -> Any:
        self.graph.launch(self.stream)
        return self.result


def capture(step: Callable[[], Any], optimizer: Any) -> Callable[[], Any]:
    """Record `step` (a whole training step on fixed device arrays, updating with
    `optimizer`) in a CUDA graph; return a function that replays it and returns what `step`
    returned (its arrays refilled).

    `step` runs twice for real first, so everything it keeps (gradients, optimizer state) is
    allocated and the memory pool holds a block for every temporary: the capture itself
    runs nothing and allocates nothing from the device. The temporaries come from a pool of
    the graph's own, so no other array is ever handed memory the graph writes. Feed new data
    by copying into the arrays `step` reads (`x[...] = batch`). A graph replays the Python
    numbers of the step it recorded, so an optimizer whose numbers change per step (Adam's
    bias corrections, a learning-rate schedule) is refused (`optimizer.check_capturable`)."""
    optimizer.check_capturable()
    pool = cupy.cuda.MemoryPool()
    stream = cupy.cuda.Stream()  # a blocking stream: ordered with the default stream
    cupy.cuda.Device().synchronize()
    with cupy.cuda.using_allocator(pool.malloc), stream:
        step()
        step()
        stream.synchronize()
        stream.begin_capture()
        try:
            result = step()
        except BaseException:
            try:  # end the broken capture, but report what broke it
                stream.end_capture()
            except Exception:
                pass
            raise
        graph = stream.end_capture()
    return _Replay(graph, stream, pool, result)
