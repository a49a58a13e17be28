"""The math of xpnet in the array API standard only: the reference every fast path is tested
against. Each function takes the namespace `xp` explicitly, resolved once by the caller."""

from __future__ import annotations

from types import ModuleType
from typing import Any

Array = Any


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """1 / (1 + exp(-x)) in the split form: no overflow for any finite x, no lost lower tail."""
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = sigmoid(x): grad * y * (1 - y)."""
    return grad * y * (1.0 - y)


def tanh(x: Array, xp: ModuleType) -> Array:
    return xp.tanh(x)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = tanh(x): grad * (1 - y**2)."""
    return grad * (1.0 - y * y)


def relu(x: Array, xp: ModuleType) -> Array:
    return xp.where(x > 0, x, 0.0)


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """dL/dx from the cached output y = relu(x): grad where y > 0, else 0."""
    return xp.where(y > 0, grad, 0.0)


def identity(x: Array, xp: ModuleType) -> Array:
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


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): the SSE loss and its gradient from one difference."""
    D = Y - T
    return 0.5 * xp.sum(D * D), D


def sgd_update(p: Array, g: Array, lr: float, xp: ModuleType) -> Array:
    """p - lr * g. (Fast paths update p in place and return it.)"""
    return p - lr * g


def momentum_update(
    p: Array, g: Array, v: Array, lr: float, mu: float, xp: ModuleType
) -> tuple[Array, Array]:
    """(p - lr * v', v') with v' = mu * v + g: PyTorch's heavy-ball form."""
    v = mu * v + g
    return p - lr * v, v


def adam_update(
    p: Array,
    g: Array,
    m: Array,
    v: Array,
    hyper: tuple[float, float, float, float, float],
    xp: ModuleType,
) -> tuple[Array, Array, Array]:
    """One Adam step (PyTorch's form): m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2,
    p' = p - step * m' / (sqrt(v') / c2 + eps), where hyper = (step, b1, b2, eps, c2) with the
    bias corrections folded into step = lr / (1 - b1^t) and c2 = sqrt(1 - b2^t)."""
    step, beta1, beta2, eps, correction2 = hyper
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * (g * g)
    return p - step * m / (xp.sqrt(v) * (1.0 / correction2) + eps), m, v
