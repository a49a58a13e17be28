"""Elementwise activations: each caches what its backward needs, its output y (Sigmoid, Tanh,
ReLU, LeakyReLU, Identity) or its input x (GELU, SiLU, Softplus)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any, ClassVar

from array_api_compat import array_namespace

from .. import ops
from .base import Layer
from .dropout import Dropout
from .linear import Linear

__all__ = [
    "ACTIVATIONS",
    "GELU",
    "Activation",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
]

Array = Any


class Activation(Layer):
    """An elementwise activation y = f(x) whose math is `ops.<name>` and `<name>_backward`,
    which reads the cached output y, or the cached input x where `backward_from_input` is set
    (GELU's derivative, for one, is no function of y). One that caches y may write y over its
    input (`<name>_inplace`); one that caches x keeps it. The config of an activation with
    parameters (LeakyReLU's slope) is passed to its ops as keyword arguments. `init` is the
    weight initialisation a Linear next to it should use.

    The namespace and its ops are read from the input and kept while inputs keep the same
    array type, so they are resolved once, not per operation."""

    init: ClassVar[str] = "xavier"
    traceable = True
    backward_from_input: bool = False

    def __init__(self) -> None:
        self._saved: Array = None  # y, or x where backward_from_input
        self._array_type: Any = None  # Any: `type(x) is` it must not narrow x
        self._xp: ModuleType | None = None
        self._forward: Any = None
        self._forward_inplace: Any = None
        self._bias_inplace: Any = None
        self._bias_dropout: Any = None
        self._dropout_backward: Any = None
        self._backward_bias_grad: Any = None
        self._backward: Any = None

    def _bind(self, x: Array) -> None:
        """Resolve the namespace and this activation's ops for x's array type."""
        self._xp = array_namespace(x)
        fns = ops.ops_for(self._xp)
        self._forward = self._op(fns, self.name)
        self._backward = self._op(fns, self.name + "_backward")
        if self.backward_from_input:  # x must outlive the forward: nothing is overwritten
            self._forward_inplace, self._bias_inplace = self._forward, None
            self._bias_dropout = self._dropout_backward = self._backward_bias_grad = None
        else:
            self._forward_inplace = self._op(fns, self.name + "_inplace")
            self._bias_inplace = self._op(fns, f"bias_{self.name}_inplace", required=False)
            name = f"bias_{self.name}_dropout_inplace"
            self._bias_dropout = self._op(fns, name, required=False)
            # the fused backward ops stand for Activation.backward: a class that redefines it
            # (a layer of one's own, a deliberately wrong one in a test) keeps its own
            fused = type(self).backward is Activation.backward
            name = f"{self.name}_dropout_backward"
            self._dropout_backward = self._op(fns, name, required=False) if fused else None
            name = f"{self.name}_backward_bias_grad"
            self._backward_bias_grad = self._op(fns, name, required=False) if fused else None
        self._array_type = type(x)

    def _op(self, fns: ops.Ops, name: str, required: bool = True) -> Callable[..., Array] | None:
        """The op `name`, with this activation's config bound as its keyword arguments (None
        where it is absent and not `required`)."""
        fn = getattr(fns, name) if required else getattr(fns, name, None)
        options = self.config()
        return partial(fn, **options) if fn is not None and options else fn

    def forward(self, x: Array, inplace: bool = False) -> Array:
        """The activation of x; with `inplace`, x may be overwritten with it (the caller
        promises not to use x again)."""
        if type(x) is not self._array_type:
            self._bind(x)
        y = (self._forward_inplace if inplace else self._forward)(x, self._xp)
        self._saved = x if self.backward_from_input else y
        return y

    def forward_linear(self, linear: Linear, x: Array) -> Array:
        """The activation of linear.forward(x), computed in place into the layer's fresh
        output (a net fuses each Linear with the activation after it); where the ops fuse the
        bias add with this activation (`bias_<name>_inplace`), the two are one pass over that
        output. An activation that caches its input keeps the Linear's output as that input."""
        if type(x) is not self._array_type:
            self._bind(x)
        fused = self._bias_inplace
        b = None if fused is None else linear.compute_b
        if b is None:  # the step's hot path: no call more than the ops themselves
            h = linear.forward(x)
            y = self._forward_inplace(h, self._xp)
            self._saved = h if self.backward_from_input else y
            return y
        self._saved = y = fused(linear.forward(x, add_bias=False), b, self._xp)
        return y

    def forward_linear_dropout(self, linear: Linear, x: Array, dropout: Dropout) -> Array:
        """dropout.forward(self.forward_linear(linear, x)): where the ops fuse the bias add,
        this activation and the dropout mask after the product
        (`bias_<name>_dropout_inplace`), they are one pass over it; the activation's output
        and the mask are kept as the two layers keep them."""
        if type(x) is not self._array_type:
            self._bind(x)
        fused = self._bias_dropout
        b = None if fused is None or not dropout.active else linear.compute_b
        if b is None:
            return dropout.forward(self.forward_linear(linear, x))
        h = linear.forward(x, add_bias=False)
        self._saved, out, dropout.mask = fused(h, b, dropout.uniform(h), dropout.p, self._xp)
        return out

    def backward_dropout(self, grad: Array, dropout: Dropout) -> Array:
        """self.backward(dropout.backward(grad)), in one pass where the ops fuse the two
        (`<name>_dropout_backward`)."""
        if dropout.mask is None or self._dropout_backward is None:
            return self.backward(dropout.backward(grad))
        if self._saved is None:
            raise self._before_forward()
        return self._dropout_backward(self._saved, dropout.mask, grad, self._xp)

    def backward_linear(self, linear: Linear, grad: Array, input_grad: bool = True) -> Array | None:
        """linear.backward(self.backward(grad), input_grad): the planned block's backward.
        Where the ops fuse this backward with its column sums (`<name>_backward_bias_grad`)
        and the Linear has a view for dL/db (`bias_grad_target`), those are written straight
        into it and the Linear computes only dL/dW and dL/dx."""
        db = None if self._backward_bias_grad is None else linear.bias_grad_target()
        if db is None:  # the step's hot path: the two layers' own calls
            return linear.backward(self.backward(grad), input_grad)
        return self._backward_bias_linear(linear, grad, None, db, input_grad)

    def backward_linear_dropout(
        self, linear: Linear, grad: Array, dropout: Dropout, input_grad: bool = True
    ) -> Array | None:
        """linear.backward(self.backward_dropout(grad, dropout), input_grad): the block
        Linear -> activation -> Dropout's backward, fused as `backward_linear` says."""
        fused = self._backward_bias_grad is not None and dropout.mask is not None
        db = linear.bias_grad_target() if fused else None
        if db is None:
            return linear.backward(self.backward_dropout(grad, dropout), input_grad)
        return self._backward_bias_linear(linear, grad, dropout.mask, db, input_grad)

    def _backward_bias_linear(
        self, linear: Linear, grad: Array, mask: Array | None, db: Array, input_grad: bool
    ) -> Array | None:
        """The block's backward by `<name>_backward_bias_grad` (of grad times a dropout's mask
        where one is given), writing dL/db into db, the Linear's view of the flat gradient."""
        if self._saved is None:
            raise self._before_forward()
        g = self._backward_bias_grad(self._saved, grad, mask, db, self._xp)
        return linear.backward_weights(g, db, input_grad)

    def backward(self, grad: Array) -> Array:
        """dL/dx from dL/dy and the cached output y (or input x)."""
        if self._saved is None:
            raise self._before_forward()
        return self._backward(self._saved, grad, self._xp)

    def _before_forward(self) -> RuntimeError:
        return RuntimeError(f"{type(self).__name__}.backward called before forward")


class Sigmoid(Activation, name="sigmoid"):
    """y = 1 / (1 + exp(-x)); backward: grad * y * (1 - y), at most grad / 4."""


class Tanh(Activation, name="tanh"):
    """y = tanh(x); backward: grad * (1 - y**2)."""


class ReLU(Activation, name="relu"):
    """y = max(x, 0); backward: grad where y > 0."""

    init = "he"


class LeakyReLU(Activation, name="leaky_relu"):
    """y = x where x > 0, else slope * x (torch.nn.LeakyReLU's negative_slope); backward:
    grad where x > 0, else slope * grad, read from y, whose sign is x's for slope >= 0 (from x
    for a negative slope)."""

    init = "he"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)
        if not math.isfinite(self.slope):
            raise ValueError(f"LeakyReLU's slope must be a finite number, got {slope!r}")
        self.backward_from_input = self.slope < 0

    def config(self) -> dict[str, Any]:
        return {"slope": self.slope}


class GELU(Activation, name="gelu"):
    """y = x * Phi(x), Phi the standard normal CDF (exact, erf-based: torch.nn.GELU()'s);
    backward from x: grad * (Phi(x) + x * phi(x))."""

    init = "he"
    backward_from_input = True


class SiLU(Activation, name="silu"):
    """y = x * sigmoid(x) (also called swish); backward from x: grad * s * (1 + x * (1 - s)),
    s = sigmoid(x)."""

    init = "he"
    backward_from_input = True


class Softplus(Activation, name="softplus"):
    """y = log(1 + exp(x)), and x above 20 (torch.nn.Softplus()'s beta=1, threshold=20), a
    smooth ReLU; backward from x: grad * sigmoid(x)."""

    backward_from_input = True


class Identity(Activation, name="identity"):
    """y = x; the output layer of a net that emits logits or regression values."""


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, GELU, SiLU, Softplus, Identity)
}
