"""The math: `ops_for(xp)` gives the functions for a namespace: those of `generic` (the
array-API reference), with a fused fast path's own functions in their place where the
namespace has one (ops/numpy.py, ops/torch.py, ops/cupy.py, ops/jax.py, each tested against
`generic`).

A fast module defines only what it speeds up (its `__all__`), with `generic`'s names and
arguments. An activation is `<name>(x, xp)` and `<name>_backward(t, grad, xp)`, t the cached
output y or, for GELU, SiLU and Softplus, the cached input x; its parameters (LeakyReLU's
slope) follow as keyword arguments. One whose backward reads y also has an
`<name>_inplace(x, xp)` that may overwrite x (generic's returns a new array), and a fast module
may offer `bias_<name>_inplace(y, b, xp)`: a layer's bias add and activation in one pass over
its product y (CuPy: one kernel); where it is absent, the layers add the bias and call
`<name>_inplace`. For the block Linear -> activation -> Dropout a fast module may offer
`bias_<name>_dropout_inplace(y, b, u, p, xp)` -> (activation output, dropped output, mask) and
`<name>_dropout_backward(y, mask, grad, xp)` (<name>_backward of grad * mask); and for the
block's backward, with or without the Dropout, `<name>_backward_bias_grad(y, grad, mask, db,
xp)`: <name>_backward of grad (times mask unless it is None) with its column sums written into
db, the Linear's view of its bias gradient in the net's flat gradient, so that the Linear
computes only dW and dx. The layers look these up with getattr and otherwise take generic's
steps, with the same numbers (a fused column sum's to rounding: its order may differ).
`layer_norm`, `softmax_cross_entropy` and `dropout` are generic
functions that CuPy runs as one kernel each (the CUDA source: ops/cuda_code.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any, Protocol, cast

import array_api_compat

from . import generic
from .generic import AdamScalars

__all__ = ["AdamScalars", "Ops", "ops_for"]

Array = Any


class Ops(Protocol):
    """What `ops_for` gives: generic's functions, each with generic's signature (mypy checks
    that `generic` satisfies this; see there for what each computes). Fast paths may add
    `bias_<name>_inplace`, `bias_<name>_dropout_inplace`, `<name>_dropout_backward` and
    `<name>_backward_bias_grad` (the module docstring): look those up with getattr."""

    def sigmoid(self, x: Array, xp: ModuleType) -> Array: ...
    def sigmoid_inplace(self, x: Array, xp: ModuleType) -> Array: ...
    def sigmoid_backward(self, y: Array, grad: Array, xp: ModuleType) -> Array: ...
    def tanh(self, x: Array, xp: ModuleType) -> Array: ...
    def tanh_inplace(self, x: Array, xp: ModuleType) -> Array: ...
    def tanh_backward(self, y: Array, grad: Array, xp: ModuleType) -> Array: ...
    def relu(self, x: Array, xp: ModuleType) -> Array: ...
    def relu_inplace(self, x: Array, xp: ModuleType) -> Array: ...
    def relu_backward(self, y: Array, grad: Array, xp: ModuleType) -> Array: ...
    def identity(self, x: Array, xp: ModuleType) -> Array: ...
    def identity_inplace(self, x: Array, xp: ModuleType) -> Array: ...
    def identity_backward(self, y: Array, grad: Array, xp: ModuleType) -> Array: ...
    def gelu(self, x: Array, xp: ModuleType) -> Array: ...
    def gelu_backward(self, x: Array, grad: Array, xp: ModuleType) -> Array: ...
    def silu(self, x: Array, xp: ModuleType) -> Array: ...
    def silu_backward(self, x: Array, grad: Array, xp: ModuleType) -> Array: ...
    def leaky_relu(self, x: Array, xp: ModuleType, *, slope: float) -> Array: ...
    def leaky_relu_inplace(self, x: Array, xp: ModuleType, *, slope: float) -> Array: ...
    def leaky_relu_backward(
        self, t: Array, grad: Array, xp: ModuleType, *, slope: float
    ) -> Array: ...
    def softplus(self, x: Array, xp: ModuleType) -> Array: ...
    def softplus_backward(self, x: Array, grad: Array, xp: ModuleType) -> Array: ...
    def erf(self, x: Array, xp: ModuleType) -> Array: ...
    def erfc(self, x: Array, xp: ModuleType) -> Array: ...
    def log_softmax(self, z: Array, xp: ModuleType) -> Array: ...
    def softmax(self, z: Array, xp: ModuleType) -> Array: ...
    def linear(self, x: Array, W: Array, b: Array | None, xp: ModuleType) -> Array: ...
    def linear_backward(
        self, x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
    ) -> tuple[Array, Array | None, Array | None]: ...
    def linear_backward_into(
        self,
        x: Array,
        grad: Array,
        W: Array,
        dW: Array,
        db: Array | None,
        input_grad: bool,
        xp: ModuleType,
    ) -> Array | None: ...
    def sse(self, Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]: ...
    def sgd_update(self, p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array: ...
    def momentum_update(
        self, p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
    ) -> tuple[Array, Array]: ...
    def adam_update(
        self, p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
    ) -> tuple[Array, Array, Array]: ...
    def moments(self, x: Array, axis: int, xp: ModuleType) -> tuple[Array, Array]: ...
    def normalize(
        self, x: Array, mean: Array, var: Array, eps: float, xp: ModuleType
    ) -> tuple[Array, Array]: ...
    def normalize_backward(
        self, grad: Array, x_hat: Array, inv_std: Array, axis: int, xp: ModuleType
    ) -> Array: ...
    def layer_norm(
        self, x: Array, gamma: Array, beta: Array, eps: float, xp: ModuleType
    ) -> tuple[Array, Array, Array]: ...
    def layer_norm_backward(
        self, grad: Array, x_hat: Array, inv_std: Array, gamma: Array, xp: ModuleType
    ) -> Array: ...
    def softmax_cross_entropy(self, Z: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]: ...
    def dropout(self, x: Array, u: Array, p: float, xp: ModuleType) -> tuple[Array, Array]: ...
    def uniform_source(
        self, entropy: Sequence[int], like: Array, xp: ModuleType
    ) -> Callable[[tuple[int, ...]], Array]: ...


# namespace test -> fast module; imported on first use, so numpy never imports cupy or torch
_FAST = (
    (array_api_compat.is_numpy_namespace, "numpy"),
    (array_api_compat.is_cupy_namespace, "cupy"),
    (array_api_compat.is_torch_namespace, "torch"),
    (array_api_compat.is_jax_namespace, "jax"),
)
_CHOSEN: dict[str, Ops] = {}


def _own_functions(module: ModuleType) -> dict[str, Any]:
    """The functions a module exports (its `__all__`)."""
    return {name: getattr(module, name) for name in module.__all__}


def ops_for(xp: ModuleType) -> Ops:
    """The ops to use for arrays of namespace `xp`: `generic` itself, or generic's functions
    overlaid with a fast module's."""
    chosen = _CHOSEN.get(xp.__name__)
    if chosen is None:
        chosen = generic
        for test, name in _FAST:
            if test(xp):
                fast = importlib.import_module(f"{__name__}.{name}")
                overlay = SimpleNamespace(**{**_own_functions(generic), **_own_functions(fast)})
                chosen = cast(Ops, overlay)
                break
        _CHOSEN[xp.__name__] = chosen
    return chosen
