"""The multilayer perceptron: Linear layers with an activation after each, trained by
explicit backpropagation through the layer list in reverse."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from . import ops
from .backend import Backend, BackendError, asarray, check_placement, get_backend
from .layers import ACTIVATIONS, Linear
from .ops.random import new_generator

Array = Any

HIDDEN = ("sigmoid", "tanh", "relu")
OUTPUTS = ("sigmoid", "identity", "tanh", "relu")


class MLP:
    """An MLP of sizes [n_in, h1, ..., n_out] with `hidden` activations and an `output` one.

    Weights start from `numpy.random.default_rng(seed)` on the host (Glorot-uniform for sigmoid
    and tanh, He-normal for relu, zero biases), so one seed gives bit-identical weights on every
    backend. Parameters are named W1, b1, W2, ... (layer k maps sizes[k-1] -> sizes[k]).

    On NumPy the parameters are views of one flat array and the gradients are written into
    views of another, so an optimizer updates the whole net in one call (`flat_buffers`);
    `backward` then overwrites the arrays of `grads` in place."""

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str = "sigmoid",
        output: str = "sigmoid",
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: str = "float32",
        seed: int = 0,
        bias: bool = True,
    ) -> None:
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or any(n < 1 for n in sizes):
            raise ValueError(
                f"sizes must list at least an input and an output width, all >= 1; got {sizes}"
            )
        if hidden not in HIDDEN:
            raise ValueError(f"unknown hidden activation {hidden!r}: use one of {HIDDEN}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output activation {output!r}: use one of {OUTPUTS}")
        self.backend = get_backend(backend, device)
        self.dtype_name = dtype
        self.dtype = self.backend.dtype(dtype)
        self.sizes, self.hidden, self.output, self.seed = sizes, hidden, output, seed
        self.bias = bias
        init = "he" if hidden == "relu" else "xavier"
        rng = new_generator(seed)
        self.linears = [
            Linear(n_in, n_out, backend=self.backend, dtype=dtype, seed=rng, init=init, bias=bias)
            for n_in, n_out in itertools.pairwise(sizes)
        ]
        activations = [hidden] * (len(self.linears) - 1) + [output]
        self.layers: list[Any] = []
        for linear, act in zip(self.linears, activations, strict=True):
            self.layers += [linear, ACTIVATIONS[act]()]
        self._grads: dict[str, Array] = {}
        self._input_type: type | None = None  # the array type of inputs that passed the checks
        # (name, Linear, key in its params), built once: the parameter names in order
        self._names = [
            (f"{key}{k}", linear, key)
            for k, linear in enumerate(self.linears, start=1)
            for key in linear.params
        ]
        self._ops = ops.ops_for(self.backend.xp)
        self._flat: tuple[Array, Array, list[tuple[str, int, int, tuple[int, ...]]]] | None = None
        self._param_views: dict[str, Array] = {}  # the flat arrays' views, by name
        self._grad_views: dict[str, Array] = {}
        if hasattr(self._ops, "linear_backward_into"):
            self._flatten()

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
            X = layers[k + 1].forward(layers[k].forward(X), inplace=True)
        return X

    def backward(self, gY: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dL/dY through the layers; set `grads` and return dL/dX (or None and skip
        the first layer's input product when `input_grad` is False)."""
        g = gY
        self._grads = {}  # drop the last step's gradients before making new ones (peak memory)
        for layer in reversed(self.layers[1:]):
            g = layer.backward(g)
        g = self.layers[0].backward(g, input_grad=input_grad)
        self._grads = {name: linear.grads[key] for name, linear, key in self._names}
        return g

    def __call__(self, X: Array) -> Array:
        return self.forward(X)

    @property
    def grads(self) -> dict[str, Array]:
        """dL/dparameter from the last backward, keyed like `state_dict` (on NumPy, views that
        the next backward overwrites: copy them to keep them)."""
        return self._grads

    # -- parameters ----------------------------------------------------------------------
    def parameters(self) -> dict[str, Array]:
        """{"W1": ..., "b1": ..., ...}: the live parameter arrays (not copies)."""
        return {name: linear.params[key] for name, linear, key in self._names}

    def _flatten(self) -> None:
        """Set `_flat` = (P, G, layout): copy the parameters into one flat array P, as views of
        it, and give each Linear views of one flat array G to write its gradients into."""
        xp, device = self.backend.xp, self.backend.device
        layout, start = [], 0
        for name, linear, key in self._names:
            shape = tuple(linear.params[key].shape)
            stop = start + math.prod(shape)
            layout.append((name, start, stop, shape))
            start = stop
        G = xp.zeros((start,), dtype=self.dtype, device=device)
        self._flat = (xp.empty((start,), dtype=self.dtype, device=device), G, layout)
        self._grad_views = {}
        for (name, linear, key), (_, start, stop, shape) in zip(self._names, layout, strict=True):
            self._grad_views[name] = grad = xp.reshape(G[start:stop], shape)
            linear.grad_out = {**(linear.grad_out or {}), key: grad}
        self._load_flat(self.parameters())

    def _load_flat(self, values: Mapping[str, Array]) -> None:
        """Copy values (by name) into the flat parameter array and make the layers' parameters
        its views again."""
        P, _, layout = self._flat
        xp = self.backend.xp
        self._param_views = {}
        for (name, linear, key), (_, start, stop, shape) in zip(self._names, layout, strict=True):
            linear.params[key] = view = xp.reshape(P[start:stop], shape)
            view[...] = values[name]
            self._param_views[name] = view

    def flat_buffers(
        self,
    ) -> tuple[Array, Array, list[tuple[str, int, int, tuple[int, ...]]]] | None:
        """(P, G, layout): one flat array holding every parameter, one holding every gradient
        of the last backward, and where each lies in them ([(name, start, stop, shape), ...]),
        so that an optimizer can update the whole net in one call; None where the net keeps
        no flat arrays (other libraries than NumPy) or a parameter or gradient was rebound
        since (then the optimizer updates parameter by parameter, from `grads`)."""
        if self._flat is None:
            return None
        params, grads, current = self._param_views, self._grad_views, self._grads
        for name, linear, key in self._names:
            if linear.params[key] is not params[name]:
                return None
            if current and current.get(name) is not grads[name]:
                return None
        return self._flat

    def set_parameter(self, name: str, value: Array) -> None:
        """Rebind one parameter (used for immutable arrays; no checks: internal). On NumPy the
        net then stops updating through its flat arrays until `load_state_dict`."""
        self.linears[int(name[1:]) - 1].params[name[0]] = value

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
            got = tuple(getattr(state[name], "shape", ()))
            if got != shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {got} but the net needs {shape}; "
                    "build the net with the sizes the state was saved from"
                )
            new[name] = self.backend.xp.asarray(asarray(state[name], like=self), copy=True)
        if self._flat is not None:
            self._load_flat(new)
            return
        for name, value in new.items():
            self.set_parameter(name, value)

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
