"""JAX versions of the ops in `generic`: each a `jax.jit`-compiled copy of generic's own code, so
XLA runs one fused computation where eager JAX dispatches every operation on its own (the
split sigmoid is five calls, Adam's update ten); erf and erfc are XLA's own (`jax.lax`), and
GELU's formula is generic's around them. The numbers are generic's to rounding (XLA may
fuse a multiply and an add); tested against it like every fast path.

JAX arrays are immutable: nothing here writes in place, every function returns new arrays
(the `_inplace` activations too). Learning rates and Adam's bias corrections are passed as
traced scalars, so a changing learning rate or step count never recompiles; a new shape or
dtype compiles once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from . import generic
from .generic import AdamScalars, seed_of

__all__ = [
    "adam_update",
    "compile_epoch",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "momentum_update",
    "relu",
    "relu_backward",
    "relu_inplace",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "softmax",
    "sse",
    "tanh_backward",
    "uniform_source",
]

Array = Any

_sigmoid = jax.jit(partial(generic.sigmoid, xp=jnp))
_sigmoid_backward = jax.jit(partial(generic.sigmoid_backward, xp=jnp))
_relu = jax.jit(partial(generic.relu, xp=jnp))
_relu_backward = jax.jit(partial(generic.relu_backward, xp=jnp))
_tanh_backward = jax.jit(partial(generic.tanh_backward, xp=jnp))
_log_softmax = jax.jit(partial(generic.log_softmax, xp=jnp))
_softmax = jax.jit(partial(generic.softmax, xp=jnp))
_sse = jax.jit(partial(generic.sse, xp=jnp))


def sigmoid(x: Array, xp: ModuleType) -> Array:
    return _sigmoid(x)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    return _sigmoid(x)


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    return _sigmoid_backward(y, grad)


def relu(x: Array, xp: ModuleType) -> Array:
    return _relu(x)


def relu_inplace(x: Array, xp: ModuleType) -> Array:
    return _relu(x)


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    return _relu_backward(y, grad)


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    return _tanh_backward(y, grad)


def log_softmax(z: Array, xp: ModuleType) -> Array:
    return _log_softmax(z)


def softmax(z: Array, xp: ModuleType) -> Array:
    return _softmax(z)


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    return _sse(Y, T)


# XLA's own erf and erfc. XLA's erfc was measured up to 260 ulps off in the float64 tail
# (erfc(x) for x from 20 on, below 1e-175; jax 0.10) where generic's is within 3; generic's
# compiled is no better, as XLA merges the product of its two exps into one exp.
_erf = jax.jit(jax.lax.erf)
_erfc = jax.jit(jax.lax.erfc)
_SQRT_HALF = math.sqrt(0.5)


def erf(x: Array, xp: ModuleType) -> Array:
    return _erf(x)


def erfc(x: Array, xp: ModuleType) -> Array:
    return _erfc(x)


def _normal_cdf(x: Array) -> Array:
    """Phi(x) = erfc(-x / sqrt(2)) / 2 with XLA's erfc, as generic.gelu takes it."""
    return 0.5 * jax.lax.erfc(-_SQRT_HALF * x)


@jax.jit
def _gelu(x: Array) -> Array:
    return generic.gelu_from_cdf(x, _normal_cdf(x))


@jax.jit
def _gelu_backward(x: Array, grad: Array) -> Array:
    return generic.gelu_backward_from_cdf(x, _normal_cdf(x), grad, jnp)


def gelu(x: Array, xp: ModuleType) -> Array:
    return _gelu(x)


def gelu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    return _gelu_backward(x, grad)


_linear = jax.jit(partial(generic.linear, xp=jnp))


def linear(x: Array, W: Array, b: Array | None, xp: ModuleType) -> Array:
    """x @ W + b in one computation."""
    return _linear(x, W, b)


@partial(jax.jit, static_argnames=("bias", "input_grad"))
def _linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool
) -> tuple[Array, Array | None, Array | None]:
    return generic.linear_backward(x, grad, W, bias, input_grad, jnp)


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    return _linear_backward(x, grad, W, bias, input_grad)


# the update rules: generic's, compiled; their numbers (lr, momentum, AdamScalars) are traced
_sgd = jax.jit(partial(generic.sgd_update, xp=jnp))
_momentum = jax.jit(partial(generic.momentum_update, xp=jnp))
_adam = jax.jit(partial(generic.adam_update, xp=jnp))


def sgd_update(p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array:
    return _sgd(p, g, lr=lr)


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    return _momentum(p, g, v, lr=lr, momentum=momentum)


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """generic.adam_update in one computation; the scalars (bias corrections folded on the
    host) are traced, so the step count never recompiles it."""
    return _adam(p, g, m, v, scalars)


def uniform_source(
    entropy: Sequence[int], like: Array, xp: ModuleType
) -> Callable[[tuple[int, ...]], Array]:
    """generic.uniform_source drawn by JAX's counter-based generator on like's device: a key
    from `entropy`, split once per draw."""
    key = jax.device_put(jax.random.key(seed_of(entropy)), like.device)

    def draw(shape: tuple[int, ...]) -> Array:
        nonlocal key
        key, now = jax.random.split(key)
        return jax.random.uniform(now, shape, dtype=like.dtype)

    return draw


def compile_epoch(
    step: Callable[..., tuple[Array, dict[str, Array], Array, Array]],
    score: Callable[[Array, Array], Array] | None,
    like: Array,
) -> Callable[..., tuple[Array, dict[str, Array], Array, Array]]:
    """An epoch of training steps as one XLA computation: `run(P, state, X, T, numbers,
    batch=b)` runs `step(P, state, Xb, Tb, numbers) -> (P, state, loss, Y)` over the
    len(X) // b full batches of X, T in order (a `lax.scan`; `numbers`, the epoch's optimizer
    numbers along a leading axis, reaches every step whole, and the step picks its row) and
    returns the new P and state, the summed loss (each batch's times its rows) and, with
    `score(Y, T)`, the summed correct count. Traced once per batch size, step count and dtype;
    the numbers are traced, so a changing learning rate never recompiles. The parameters and
    state are donated on accelerators (XLA updates them in place there; the CPU backend
    cannot); `like`, the parameters, is the torch overlay's question (which device) and needs
    no answer here."""

    def epoch(
        P: Array, state: dict[str, Array], X: Array, T: Array, numbers: Any, batch: int
    ) -> tuple[Array, dict[str, Array], Array, Array]:
        def body(carry: Any, i: Array) -> tuple[Any, None]:
            P, state, total, correct = carry
            Xb = jax.lax.dynamic_slice_in_dim(X, i * batch, batch)
            Tb = jax.lax.dynamic_slice_in_dim(T, i * batch, batch)
            P, state, value, Y = step(P, state, Xb, Tb, numbers)
            total = total + value * batch
            if score is not None:
                correct = correct + score(Y, Tb)
            return (P, state, total, correct), None

        counts = jnp.zeros((), dtype=jax.dtypes.canonicalize_dtype(jnp.int64))
        start = (P, state, jnp.zeros((), dtype=P.dtype), counts)
        steps = jnp.arange(X.shape[0] // batch)
        (P, state, total, correct), _ = jax.lax.scan(body, start, steps)
        return P, state, total, correct

    donate = (0, 1) if jax.default_backend() != "cpu" else ()
    return jax.jit(epoch, static_argnames="batch", donate_argnums=donate)
