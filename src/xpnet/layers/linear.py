"""The affine layer of the classic tutorials: y = x @ W + b."""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

import numpy as np

from .. import ops
from ..backend import Backend
from ..params import ParameterBuffer
from ..rng import INITS, init_weights
from .base import Layer

__all__ = ["Linear"]

Array = Any


def _width(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


class Linear(Layer, name="linear"):
    """y = x @ W + b, with W shaped (n_in, n_out) and b shaped (n_out,) (y = x @ W when
    `bias` is False, as in the seeds' bias-free examples).

    W starts Glorot-uniform ("xavier"), He-normal ("he") or LeCun-normal ("lecun"), b at zero.
    `init=None` lets the net choose from the activation next to the layer (`Sequential` says
    how); alone, it is "xavier". Built with a `backend`, the layer has parameters of its own at
    once; without one it takes its net's backend, device, dtype and seed (or NumPy's, used on
    its own). `seed` is an int or a numpy Generator."""

    traceable = True

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        bias: bool = True,
        init: str | None = None,
        backend: str | Backend | None = None,
        device: Any = None,
        dtype: str = "float32",
        seed: Any = 0,
    ) -> None:
        self.n_in, self.n_out = _width("n_in", n_in), _width("n_out", n_out)
        if init is not None and init not in INITS:
            raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)} (or None)")
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
        self.bias, self.init = bias, init
        self.input_width = self.n_in
        self._x: Array = None
        self._standalone = (dtype, seed)
        if backend is not None:
            self.place_alone(backend, device, dtype, seed)

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "bias": self.bias, "init": self.init}

    def output_width(self, n_in: int) -> int:
        return self.n_out

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {"W": (self.n_in, self.n_out)}
        if self.bias:
            shapes["b"] = (self.n_out,)
        return shapes

    def initial_parameters(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        W, b = init_weights(self.n_in, self.n_out, self.init or "xavier", rng)
        return {"W": W, "b": b} if self.bias else {"W": W}

    def attach(self, buffer: ParameterBuffer, names: Any) -> None:
        super().attach(buffer, names)
        self._w, self._b = self.parameter_names["W"], self.parameter_names.get("b")
        self._xp: ModuleType = buffer.xp
        self._ops: Any = ops.ops_for(buffer.xp)

    @property
    def W(self) -> Array:
        return self._buffer().params[self._w]

    @property
    def b(self) -> Array | None:
        buffer = self.parameter_buffer or self._buffer()
        return None if self._b is None else buffer.params[self._b]

    @property
    def compute_b(self) -> Array | None:
        """b as the products use it: its low-precision copy under mixed precision."""
        buffer = self.parameter_buffer or self._buffer()
        return None if self._b is None else buffer.compute[self._b]

    def forward(self, x: Array, add_bias: bool = True) -> Array:
        """x @ W + b; x @ W alone when `add_bias` is False (the caller adds b, as a fused
        bias-and-activation op does)."""
        buffer = self.parameter_buffer or self._buffer()
        params = buffer.compute  # the parameters, or their low-precision copy
        if buffer.compute_dtype is not None:  # mixed precision: the product in the low dtype
            x = self._xp.astype(x, buffer.compute_dtype, copy=False)
        self._x = x
        b = None if self._b is None or not add_bias else params[self._b]
        return self._ops.linear(x, params[self._w], b, self._xp)

    def backward(self, grad: Array, input_grad: bool = True) -> Array | None:
        """Set grads["W"] = x.T @ grad and grads["b"] = sum(grad); return grad @ W.T (dL/dx)
        unless `input_grad` is False (the first layer of a net in training needs no dL/dx).

        The gradients are written into the buffer's views of its flat gradient array where it
        keeps them, otherwise made as new arrays."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        buffer, w, b = self.parameter_buffer or self._buffer(), self._w, self._b
        W = buffer.compute[w]
        if buffer.compute_dtype is not None:
            return self._backward_mixed(grad, W, buffer, input_grad)
        dW = buffer.grad_target(w)
        if dW is not None:
            db = None if b is None else buffer.grad_target(b)
            dx = self._ops.linear_backward_into(self._x, grad, W, dW, db, input_grad, self._xp)
        else:
            buffer.grads.pop(w, None)  # the last step's gradients are not kept alive while
            if b is not None:  # new ones are made
                buffer.grads.pop(b, None)
            dW, db, dx = self._ops.linear_backward(
                self._x, grad, W, b is not None, input_grad, self._xp
            )
        buffer.grads[w] = dW
        if b is not None:
            buffer.grads[b] = db
        return dx

    def bias_grad_target(self) -> Array | None:
        """The view of the flat gradient array that dL/db belongs in, for an op that sums it
        while taking the activation's backward (then `backward_weights`); None where backward
        must make dL/db itself (no bias, no flat gradient, mixed precision's float32 sum)."""
        buffer = self.parameter_buffer or self._buffer()
        if self._b is None or buffer.compute_dtype is not None:
            return None
        return buffer.grad_target(self._b)

    def backward_weights(self, grad: Array, db: Array, input_grad: bool = True) -> Array | None:
        """backward with dL/db already written into db (`bias_grad_target`): dL/dW into its
        view of the flat gradient, and dL/dx unless `input_grad` is False."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        buffer, w = self.parameter_buffer or self._buffer(), self._w
        dW = buffer.grad_target(w)
        W = buffer.compute[w]
        dx = self._ops.linear_backward_into(self._x, grad, W, dW, None, input_grad, self._xp)
        buffer.grads[w], buffer.grads[self.parameter_names["b"]] = dW, db
        return dx

    def _backward_mixed(
        self, grad: Array, W: Array, buffer: ParameterBuffer, input_grad: bool
    ) -> Array | None:
        """Mixed precision's backward: the products in W's low dtype (grad cast to it), dL/db
        summed in the buffer's float32, both gradients kept in float32."""
        xp = self._xp
        grad = xp.astype(grad, W.dtype, copy=False)
        dW, _, dx = self._ops.linear_backward(self._x, grad, W, False, input_grad, xp)
        buffer.put_grad(self._w, dW)
        if self._b is not None:
            buffer.put_grad(self._b, xp.sum(grad, axis=0, dtype=buffer.dtype))
        return dx

    def backward_parameters(self, grad: Array) -> None:
        self.backward(grad, input_grad=False)

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out})"
