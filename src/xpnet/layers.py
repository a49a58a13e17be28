"""The layers of the classic tutorials, each with `forward(x)` and `backward(grad)`.

`forward` caches what `backward` needs (Linear its input, an activation its output) and
`backward` turns dL/d(output) into dL/d(input) by the chain rule, storing parameter
gradients in `grads` (overwritten each call, never summed).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from array_api_compat import array_namespace

from . import ops
from .backend import Backend, asarray, get_backend
from .params import ParameterBuffer
from .rng import init_weights

__all__ = ["ACTIVATIONS", "Activation", "Identity", "Linear", "ReLU", "Sigmoid", "Tanh"]

Array = Any


class Linear:
    """y = x @ W + b, with W shaped (n_in, n_out) and b shaped (n_out,) (y = x @ W when
    `bias` is False, as in the seeds' bias-free examples).

    The parameters live in a `ParameterBuffer`: the layer's own, or its MLP's once the MLP
    `attach`es it, so that one optimizer call updates every layer. `seed` is an int or a numpy
    Generator (an MLP passes one Generator through its layers)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: str = "float32",
        seed: Any = 0,
        init: str = "xavier",
        bias: bool = True,
    ) -> None:
        self.backend = get_backend(backend, device)
        self.dtype_name = dtype
        self.n_in, self.n_out = n_in, n_out
        W, b = init_weights(n_in, n_out, init, seed)
        initial = {"W": asarray(W, like=self)}
        if bias:
            initial["b"] = asarray(b, like=self)
        self._x: Array = None
        self._xp: ModuleType = self.backend.xp
        self._ops: Any = ops.ops_for(self._xp)
        self.attach(ParameterBuffer(initial), {key: key for key in initial})

    def attach(self, buffer: ParameterBuffer, names: dict[str, str]) -> None:
        """Keep the parameters in `buffer`, where parameter `key` ("W", "b") is called
        `names[key]` (e.g. "W2" in an MLP)."""
        self.parameter_buffer = buffer
        self._w = names["W"]
        self._b = names.get("b")

    @property
    def params(self) -> dict[str, Array]:
        """{"W": W, "b": b}: the live arrays (read-only mapping: set them with set_parameter)."""
        return {"W": self.W} if self._b is None else {"W": self.W, "b": self.b}

    @property
    def grads(self) -> dict[str, Array]:
        """{"W": dL/dW, "b": dL/db} of the last backward (empty before one)."""
        grads = self.parameter_buffer.grads
        keys = {"W": self._w} if self._b is None else {"W": self._w, "b": self._b}
        return {key: grads[name] for key, name in keys.items() if name in grads}

    @property
    def W(self) -> Array:
        return self.parameter_buffer.params[self._w]

    @property
    def b(self) -> Array | None:
        return None if self._b is None else self.parameter_buffer.params[self._b]

    def parameters(self) -> dict[str, Array]:
        return self.params

    def set_parameter(self, name: str, value: Array) -> None:
        """Make `value` parameter "W" or "b" (copied into the buffer where it keeps views)."""
        target = {"W": self._w, "b": self._b}.get(name)
        if target is None:
            raise KeyError(f"{self!r} has parameters {list(self.params)}, not {name!r}")
        self.parameter_buffer.set(target, value)

    def forward(self, x: Array, add_bias: bool = True) -> Array:
        """x @ W + b; x @ W alone when `add_bias` is False (the caller adds b, as a fused
        bias-and-activation op does)."""
        self._x = x
        params = self.parameter_buffer.params
        b = None if self._b is None or not add_bias else params[self._b]
        return self._ops.linear(x, params[self._w], b, self._xp)

    def backward(self, grad: Array, input_grad: bool = True) -> Array | None:
        """Set grads["W"] = x.T @ grad and grads["b"] = sum(grad); return grad @ W.T (dL/dx)
        unless `input_grad` is False (the first layer of a net in training needs no dL/dx).

        The gradients are written into the buffer's views of its flat gradient array where it
        keeps them, otherwise made as new arrays."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        buffer, w, b = self.parameter_buffer, self._w, self._b
        W = buffer.params[w]
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

    def __repr__(self) -> str:
        return f"Linear({self.n_in}, {self.n_out})"


class Activation:
    """An elementwise activation that caches its output y; backward needs only y.

    The namespace and its ops are read from the input and kept while inputs keep the same
    array type, so they are resolved once, not per operation."""

    name: str = ""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._y: Array = None
        self._array_type: Any = None  # Any: `type(x) is` it must not narrow x
        self._xp: ModuleType | None = None
        self._forward: Any = None
        self._forward_inplace: Any = None
        self._bias_inplace: Any = None
        self._backward: Any = None

    def _bind(self, x: Array) -> None:
        """Resolve the namespace and this activation's ops for x's array type."""
        self._xp = array_namespace(x)
        fns = ops.ops_for(self._xp)
        self._forward = getattr(fns, self.name)
        self._forward_inplace = getattr(fns, self.name + "_inplace")
        self._bias_inplace = getattr(fns, f"bias_{self.name}_inplace", None)
        self._backward = getattr(fns, self.name + "_backward")
        self._array_type = type(x)

    def parameters(self) -> dict[str, Array]:
        return self.params

    def forward(self, x: Array, inplace: bool = False) -> Array:
        """The activation of x; with `inplace`, x may be overwritten with it (the caller
        promises not to use x again, as MLP.forward does with each matmul output)."""
        if type(x) is not self._array_type:
            self._bind(x)
        self._y = y = (self._forward_inplace if inplace else self._forward)(x, self._xp)
        return y

    def forward_linear(self, linear: Linear, x: Array) -> Array:
        """The activation of linear.forward(x), computed in place into the layer's fresh
        output, as MLP.forward chains them; where the ops fuse the bias add with this
        activation (`bias_<name>_inplace`), the two are one pass over that output."""
        if type(x) is not self._array_type:
            self._bind(x)
        fused = self._bias_inplace
        b = None if fused is None else linear.b
        if b is None:
            y = self._forward_inplace(linear.forward(x), self._xp)
        else:
            y = fused(linear.forward(x, add_bias=False), b, self._xp)
        self._y = y
        return y

    def backward(self, grad: Array) -> Array:
        """dL/dx from dL/dy and the cached output y."""
        if self._y is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._backward(self._y, grad, self._xp)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)); backward: grad * y * (1 - y), at most grad / 4."""

    name = "sigmoid"


class Tanh(Activation):
    """y = tanh(x); backward: grad * (1 - y**2)."""

    name = "tanh"


class ReLU(Activation):
    """y = max(x, 0); backward: grad where y > 0."""

    name = "relu"


class Identity(Activation):
    """y = x; the output layer of a net that emits logits or regression values."""

    name = "identity"


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, Identity)
}
