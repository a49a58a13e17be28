"""The math of xpnet in the array API standard only: the reference every fast path is tested
against. Each function takes the namespace `xp` explicitly, resolved once by the caller."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import device

__all__ = [
    "AdamScalars",
    "adam_update",
    "identity",
    "identity_backward",
    "identity_inplace",
    "linear",
    "linear_backward",
    "linear_backward_into",
    "log_softmax",
    "moments",
    "momentum_update",
    "normalize",
    "normalize_backward",
    "relu",
    "relu_backward",
    "relu_inplace",
    "seed_of",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "softmax",
    "sse",
    "tanh",
    "tanh_backward",
    "tanh_inplace",
    "uniform_source",
]

Array = Any


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """1 / (1 + exp(-x)) in the split form: no overflow for any finite x, no lost lower tail."""
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    """sigmoid(x), allowed to overwrite x (the caller does not read x again); the array API
    has no `out=`, so here it is a new array."""
    return sigmoid(x, xp)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = sigmoid(x): grad * y * (1 - y)."""
    return grad * y * (1.0 - y)


def tanh(x: Array, xp: ModuleType) -> Array:
    return xp.tanh(x)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    return tanh(x, xp)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = tanh(x): grad * (1 - y**2)."""
    return grad * (1.0 - y * y)


def relu(x: Array, xp: ModuleType) -> Array:
    return xp.where(x > 0, x, 0.0)


def relu_inplace(x: Array, xp: ModuleType) -> Array:
    return relu(x, xp)


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = relu(x): grad where y > 0, else 0."""
    return xp.where(y > 0, grad, 0.0)


def identity(x: Array, xp: ModuleType) -> Array:
    return x


def identity_inplace(x: Array, xp: ModuleType) -> Array:
    return x


def identity_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    return grad


def log_softmax(z: Array, xp: ModuleType) -> Array:
    """log(softmax(z)) along the last axis via logsumexp: finite for any finite logits."""
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def softmax(z: Array, xp: ModuleType) -> Array:
    """exp(z) / sum(exp(z)) along the last axis, with the row max subtracted first."""
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


# -- fused steps: the fast paths do these in place; here, the reference in plain array API ----


def linear(x: Array, W: Array, b: Array | None, xp: ModuleType) -> Array:
    """x @ W + b (x @ W when b is None), the bias added into the fresh product (`+=` rebinds
    where a library's arrays are immutable)."""
    y = x @ W
    if b is not None:
        y += b
    return y


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """(dL/dW, dL/db, dL/dx) of y = x @ W + b: x.T @ grad, the column sums of grad (None
    without a bias) and grad @ W.T (None unless `input_grad`)."""
    db = xp.sum(grad, axis=0) if bias else None
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
    """linear_backward writing dL/dW into dW and dL/db into db (views of a model's flat
    gradient array); returns dL/dx, or None unless `input_grad`."""
    new_dW, new_db, dx = linear_backward(x, grad, W, db is not None, input_grad, xp)
    dW[...] = new_dW
    if db is not None:
        db[...] = new_db
    return dx


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): the SSE loss and its gradient from one difference."""
    D = Y - T
    return 0.5 * xp.sum(D * D), D


def sgd_update(p: Array, g: Array, *, lr: float, xp: ModuleType) -> Array:
    """p - lr * g. (Fast paths update p in place and return it.)"""
    return p - lr * g


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: float, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    """(p - lr * v', v') with v' = momentum * v + g: PyTorch's heavy-ball form."""
    v = momentum * v + g
    return p - lr * v, v


class AdamScalars(NamedTuple):
    """The numbers of one Adam step, as Python floats worked out on the host (no device work,
    so a changing step count costs no synchronisation): what every `adam_update` takes, in
    this order (ops/cupy.py's kernel takes them as its scalar arguments in this order too)."""

    step: float  # lr / (1 - beta1^t): the learning rate with the first bias correction
    beta1: float
    one_minus_beta1: float  # 1 - beta1 in Python's float64, before any cast to p's dtype
    beta2: float
    one_minus_beta2: float
    eps: float
    inv_correction2: float  # 1 / sqrt(1 - beta2^t): the second bias correction, on sqrt(v)

    @classmethod
    def at_step(cls, t: int, *, lr: float, beta1: float, beta2: float, eps: float) -> AdamScalars:
        """The scalars of step t (1, 2, ...) with these hyperparameters."""
        return cls(
            step=lr / (1.0 - beta1**t),
            beta1=beta1,
            one_minus_beta1=1.0 - beta1,
            beta2=beta2,
            one_minus_beta2=1.0 - beta2,
            eps=eps,
            inv_correction2=1.0 / math.sqrt(1.0 - beta2**t),
        )


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """Adam's step in PyTorch's form: m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
    p' = p - lr / (1 - b1^t) * m' / (sqrt(v') / sqrt(1 - b2^t) + eps)."""
    s = scalars
    m = s.beta1 * m + s.one_minus_beta1 * g
    v = s.beta2 * v + s.one_minus_beta2 * (g * g)
    return p - s.step * m / (xp.sqrt(v) * s.inv_correction2 + s.eps), m, v


# -- normalization --------------------------------------------------------------------------
def moments(x: Array, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """The mean and the biased variance of x along `axis`, kept as a length-1 axis."""
    mean = xp.mean(x, axis=axis, keepdims=True)
    centred = x - mean
    return mean, xp.mean(centred * centred, axis=axis, keepdims=True)


def normalize(x: Array, mean: Array, var: Array, eps: float, xp: ModuleType) -> tuple[Array, Array]:
    """(x_hat, 1 / sqrt(var + eps)) with x_hat = (x - mean) / sqrt(var + eps)."""
    inv_std = 1.0 / xp.sqrt(var + eps)
    return (x - mean) * inv_std, inv_std


def normalize_backward(
    grad: Array, x_hat: Array, inv_std: Array, axis: int, xp: ModuleType
) -> Array:
    """dL/dx from dL/dx_hat when x_hat was normalized by the mean and variance of x along
    `axis` (they depend on x too): inv_std * (g - mean(g) - x_hat * mean(g * x_hat))."""
    mean_g = xp.mean(grad, axis=axis, keepdims=True)
    mean_gx = xp.mean(grad * x_hat, axis=axis, keepdims=True)
    return inv_std * (grad - mean_g - x_hat * mean_gx)


# -- random draws -----------------------------------------------------------------------------
def seed_of(entropy: Sequence[int]) -> int:
    """One 32-bit seed from a tuple of ints (a run's seed, an epoch, a layer's place), for
    libraries whose generators take a single number."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1)[0])


def uniform_source(
    entropy: Sequence[int], like: Array, xp: ModuleType
) -> Callable[[tuple[int, ...]], Array]:
    """draw(shape): uniform numbers in [0, 1) of `like`'s dtype on its device, a stream that is
    a function of `entropy` alone. The array API has no random numbers, so here NumPy draws on
    the host and the numbers are moved (no copy for NumPy); fast paths draw on the device."""
    rng = np.random.default_rng(list(entropy))
    host = np.float32 if like.dtype == xp.float32 else np.float64
    where = device(like)

    def draw(shape: tuple[int, ...]) -> Array:
        return xp.asarray(rng.random(shape, dtype=host), device=where)

    return draw
