"""The multilayer perceptron: Linear layers with an activation after each, trained by
explicit backpropagation through the layer list in reverse."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .backend import (
    Backend,
    BackendError,
    asarray,
    check_placement,
    dtype_name,
    get_backend,
)
from .layers import ACTIVATIONS, Linear
from .params import ParameterBuffer
from .rng import new_generator

__all__ = ["HIDDEN", "HIDDEN_ACTIVATIONS", "MLP", "OUTPUTS"]

Array = Any

HIDDEN = ("sigmoid", "tanh", "relu")  # the nonlinear hidden activations
# what MLP accepts between layers: also "identity" (a linear net, as scikit-learn allows)
HIDDEN_ACTIVATIONS = (*HIDDEN, "identity")
OUTPUTS = ("sigmoid", "identity", "tanh", "relu")


def _checked_sizes(sizes: Any) -> list[int]:
    """sizes as a list of Python ints, or a ValueError that says what is wrong with it."""
    if isinstance(sizes, str) or not isinstance(sizes, Sequence):
        raise ValueError(
            f"sizes must be a list of layer widths such as [64, 32, 10], got {sizes!r}"
        )
    bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, numbers.Integral)]
    if bad:
        raise ValueError(f"sizes must be whole numbers, got {bad[0]!r} in {list(sizes)}")
    out = [int(n) for n in sizes]
    if len(out) < 2 or min(out) < 1:
        raise ValueError(
            f"sizes must list at least an input and an output width, all >= 1; got {out}"
        )
    return out


class MLP:
    """An MLP of sizes [n_in, h1, ..., n_out] with `hidden` activations and an `output` one.

    Weights start from `numpy.random.default_rng(seed)` on the host (Glorot-uniform for sigmoid,
    tanh and identity, He-normal for relu, zero biases), so one seed gives bit-identical weights
    on every backend. Parameters are named W1, b1, W2, ... (layer k maps sizes[k-1] -> sizes[k]).

    All parameters live in one `ParameterBuffer` (`parameter_buffer`): on libraries whose
    arrays can be written through views (NumPy, PyTorch, CuPy, array-api-strict) they are
    views of one flat array and `backward` writes the gradients into views of another, so an
    optimizer updates the whole net in one call and the next `backward` overwrites the arrays
    of `grads` in place; elsewhere the flat arrays are packed when asked for."""

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str = "sigmoid",
        output: str = "sigmoid",
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: int = 0,
        bias: bool = True,
    ) -> None:
        sizes = _checked_sizes(sizes)
        if hidden not in HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"unknown hidden activation {hidden!r}: use one of {HIDDEN_ACTIVATIONS}"
            )
        if output not in OUTPUTS:
            raise ValueError(f"unknown output activation {output!r}: use one of {OUTPUTS}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.backend: Backend = get_backend(backend, device)
        self.dtype_name: str = dtype_name(dtype)
        self.dtype: Any = self.backend.dtype(dtype)
        self.sizes: list[int] = sizes
        self.hidden: str = hidden
        self.output: str = output
        self.seed: int = int(seed)
        self.bias: bool = bool(bias)
        init = "he" if hidden == "relu" else "xavier"
        rng = new_generator(seed)
        self.linears = [
            Linear(
                n_in,
                n_out,
                backend=self.backend,
                dtype=self.dtype_name,
                seed=rng,
                init=init,
                bias=self.bias,
            )
            for n_in, n_out in itertools.pairwise(sizes)
        ]
        activations = [hidden] * (len(self.linears) - 1) + [output]
        self.layers: list[Any] = []
        for linear, act in zip(self.linears, activations, strict=True):
            self.layers += [linear, ACTIVATIONS[act]()]
        self._input_type: Any = None  # the array type of inputs that passed the checks
        self._output_shape: tuple[int, ...] | None = None  # of the last forward's outputs
        initial = {
            f"{key}{k}": value
            for k, linear in enumerate(self.linears, start=1)
            for key, value in linear.params.items()
        }
        self.parameter_buffer: ParameterBuffer = ParameterBuffer(initial)
        for k, linear in enumerate(self.linears, start=1):
            linear.attach(self.parameter_buffer, {key: f"{key}{k}" for key in linear.params})

    # -- the architecture, as the checkpoint stores it ------------------------------------
    def config(self) -> dict[str, Any]:
        """What rebuilds this net, as keyword arguments of MLP: sizes, activations, dtype, seed,
        bias."""
        return {
            "sizes": list(self.sizes),
            "hidden": self.hidden,
            "output": self.output,
            "dtype": self.dtype_name,
            "seed": self.seed,
            "bias": self.bias,
        }

    # -- forward and backward -------------------------------------------------------------
    def check_input(self, X: Array, what: str = "X") -> None:
        """Raise a clear error unless X is (batch, n_in), of the net's dtype, backend and device.

        An array of the type that passed before needs only attribute compares (once per step,
        cheap); anything else takes the full check, which names the problem."""
        if (
            type(X) is self._input_type
            and X.dtype == self.dtype
            and X.ndim == 2
            and X.shape[1] == self.sizes[0]
            and getattr(X, "device", "cpu") == self.backend.device
        ):
            return
        check_placement(X, self.backend, what)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(
                f"{what} has shape {tuple(X.shape)} but the net expects (batch, {self.sizes[0]}): "
                f"{self.sizes[0]} features per sample"
                + (f", got {X.shape[1]}" if X.ndim == 2 else f", got a {X.ndim}-D array")
                + "; reshape X or build the net with that input width"
            )
        if X.dtype != self.dtype:
            raise BackendError(
                f"{what} has dtype {X.dtype} but the net is {self.dtype_name}; "
                f"convert it with xpnet.asarray({what}, like=net) (integers and booleans are "
                "cast to the net's float dtype)"
            )
        self._input_type = type(X)

    def forward(self, X: Array) -> Array:
        """Outputs (batch, n_out) for inputs X (batch, n_in); caches activations for backward.
        Each activation is computed in place into its Linear's fresh output."""
        self.check_input(X)
        layers = self.layers
        for k in range(0, len(layers), 2):
            X = layers[k + 1].forward_linear(layers[k], X)
        self._output_shape = X.shape
        return X

    def backward(self, gY: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dL/dY through the layers; set `grads` and return dL/dX (or None and skip
        the first layer's input product when `input_grad` is False)."""
        if type(gY) is not self._input_type or gY.shape != self._output_shape:
            self._check_output_grad(gY)
        g = gY
        for layer in reversed(self.layers[1:]):
            g = layer.backward(g)
        g = self.layers[0].backward(g, input_grad=input_grad)
        self.parameter_buffer.sort_grads()
        return g

    def _check_output_grad(self, gY: Array) -> None:
        """Raise a clear error unless gY is dL/dY for the outputs of the last forward."""
        if self._output_shape is None:
            raise RuntimeError("MLP.backward called before forward: run net.forward(X) first")
        check_placement(gY, self.backend, "gY")
        if tuple(gY.shape) != tuple(self._output_shape):
            raise ValueError(
                f"gY has shape {tuple(gY.shape)} but the last forward returned "
                f"{tuple(self._output_shape)}: pass dL/dY for the outputs of net.forward "
                "(e.g. loss.backward())"
            )

    def __call__(self, X: Array) -> Array:
        return self.forward(X)

    @property
    def grads(self) -> dict[str, Array]:
        """dL/dparameter from the last backward, keyed like `state_dict`: views that the next
        backward overwrites where the net keeps flat arrays (copy them to keep them). An entry
        replaced here (e.g. a clipped gradient) is what the optimizer applies."""
        return self.parameter_buffer.grads

    # -- parameters ----------------------------------------------------------------------
    def parameters(self) -> dict[str, Array]:
        """{"W1": ..., "b1": ..., ...}: the live parameter arrays (not copies)."""
        return dict(self.parameter_buffer.params)

    def set_parameter(self, name: str, value: Array) -> None:
        """Make `value` (the net's backend, dtype and shape; not checked) parameter `name`:
        copied into the flat array where the net keeps views, bound in its place otherwise."""
        self.parameter_buffer.set(name, value)

    def state_dict(self) -> dict[str, Array]:
        """The parameters by name, as copies in the net's backend and device."""
        xp = self.backend.xp
        return {name: xp.asarray(p, copy=True) for name, p in self.parameters().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load copies of parameters from arrays of any supported library (moved and cast
        explicitly); missing, extra or wrong-shaped keys raise before anything changes."""
        expected = {name: tuple(p.shape) for name, p in self.parameters().items()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise KeyError(
                "state_dict does not match the net "
                f"{self.sizes}: missing keys {missing}, unexpected keys {extra}; "
                "build the net with the sizes the state was saved from"
            )
        new = {}
        for name, shape in expected.items():
            value = asarray(state[name], like=self)  # lists too; moved and cast explicitly
            got = tuple(value.shape)
            if got != shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {got} but the net needs {shape}; "
                    "build the net with the sizes the state was saved from"
                )
            new[name] = self.backend.xp.asarray(value, copy=True)
        self.parameter_buffer.load(new)

    def to(
        self, backend: str | Backend | None = None, device: Any = None, dtype: str | None = None
    ) -> MLP:
        """A copy of this net on another backend, device or dtype (an explicit move)."""
        if backend is None:
            backend = self.backend if device is None else self.backend.name
        target = get_backend(backend, device)
        net = MLP(**{**self.config(), "dtype": dtype or self.dtype_name}, backend=target)
        net.load_state_dict(self.parameters())
        return net

    def __repr__(self) -> str:
        return (
            f"MLP({self.sizes}, hidden={self.hidden!r}, output={self.output!r}, "
            f"backend={self.backend.name!r}, device={str(self.backend.device)!r}, "
            f"dtype={self.dtype_name!r})"
        )
