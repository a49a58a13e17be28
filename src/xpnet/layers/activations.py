"""Elementwise activations: each caches its output y, and its backward needs only y."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from array_api_compat import array_namespace

from .. import ops
from .base import Layer
from .linear import Linear

__all__ = ["ACTIVATIONS", "Activation", "Identity", "ReLU", "Sigmoid", "Tanh"]

Array = Any


class Activation(Layer):
    """An elementwise activation y = f(x) whose math is `ops.<name>` (and `<name>_backward`,
    from y). `init` is the weight initialisation a Linear next to it should use.

    The namespace and its ops are read from the input and kept while inputs keep the same
    array type, so they are resolved once, not per operation."""

    init: ClassVar[str] = "xavier"
    traceable = True

    def __init__(self) -> None:
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

    def forward(self, x: Array, inplace: bool = False) -> Array:
        """The activation of x; with `inplace`, x may be overwritten with it (the caller
        promises not to use x again)."""
        if type(x) is not self._array_type:
            self._bind(x)
        self._y = y = (self._forward_inplace if inplace else self._forward)(x, self._xp)
        return y

    def forward_linear(self, linear: Linear, x: Array) -> Array:
        """The activation of linear.forward(x), computed in place into the layer's fresh
        output (a net fuses each Linear with the activation after it); where the ops fuse the
        bias add with this activation (`bias_<name>_inplace`), the two are one pass over that
        output."""
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


class Sigmoid(Activation, name="sigmoid"):
    """y = 1 / (1 + exp(-x)); backward: grad * y * (1 - y), at most grad / 4."""


class Tanh(Activation, name="tanh"):
    """y = tanh(x); backward: grad * (1 - y**2)."""


class ReLU(Activation, name="relu"):
    """y = max(x, 0); backward: grad where y > 0."""

    init = "he"


class Identity(Activation, name="identity"):
    """y = x; the output layer of a net that emits logits or regression values."""


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, Identity)
}
