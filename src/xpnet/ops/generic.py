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
