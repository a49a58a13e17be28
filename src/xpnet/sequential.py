"""A net of any layers in a row: `forward` runs them in order, `backward` in reverse.

Every parameter's name and shape come from its layer: the k-th layer that has parameters
names them key + k (W1 and b1 for a first Linear, W2 and b2 for the next, ...), which is
what checkpoints, memory estimates, `xpnet info` and the estimators ask for."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .backend import Backend, BackendError, asarray, check_placement, dtype_name, get_backend
from .layers import Activation, Identity, Layer, Linear, layer_config
from .params import ParameterBuffer
from .rng import new_generator

__all__ = ["Sequential", "parameter_count", "parameter_names", "parameter_shapes", "widths"]

Array = Any


def parameter_names(layers: Sequence[Layer]) -> list[dict[str, str]]:
    """Per layer, {key: name in the net}: key + k for the k-th layer that has parameters."""
    names, k = [], 0
    for layer in layers:
        keys = list(layer.parameter_shapes())
        k += bool(keys)
        names.append({key: f"{key}{k}" for key in keys})
    return names


def parameter_shapes(layers: Sequence[Layer]) -> dict[str, tuple[int, ...]]:
    """{name: shape} of every parameter of a net of these layers, in layout order (nothing is
    allocated: a checkpoint's architecture is checked with it before a net is built)."""
    return {
        name: shape
        for layer, names in zip(layers, parameter_names(layers), strict=True)
        for key, shape in layer.parameter_shapes().items()
        for name in (names[key],)
    }


def parameter_count(layers: Sequence[Layer]) -> int:
    """The number of scalars in the parameters of a net of these layers."""
    return sum(math.prod(shape) for shape in parameter_shapes(layers).values())


def widths(layers: Sequence[Layer]) -> list[int]:
    """The number of features into the first layer and out of each layer, checked at every
    joint; a ValueError names the first pair that does not fit."""
    first = next((layer.input_width for layer in layers if layer.input_width is not None), None)
    if first is None:
        raise ValueError(
            "no layer says how many features the net takes: start with a layer of fixed width "
            "such as xpnet.Linear(n_in, n_out)"
        )
    out = [first]
    for i, layer in enumerate(layers, 1):
        if layer.input_width is not None and layer.input_width != out[-1]:
            before = f"layer {i - 1} ({layers[i - 2]!r}) gives" if i > 1 else "the input has"
            raise ValueError(
                f"layer {i} ({layer!r}) takes {layer.input_width} features but {before} "
                f"{out[-1]}; make the widths of neighbouring layers agree"
            )
        out.append(layer.output_width(out[-1]))
    return out


def _choose_inits(layers: Sequence[Layer]) -> None:
    """Give each Linear built with init=None the init of the activation after it (before it
    for a last Linear; Glorot in a net with no activation): He for the ReLU family."""
    acts = [(i, layer) for i, layer in enumerate(layers) if isinstance(layer, Activation)]
    for i, layer in enumerate(layers):
        if isinstance(layer, Linear) and layer.init is None:
            after = [a for j, a in acts if j > i and not isinstance(a, Identity)]
            before = [a for j, a in acts if j < i and not isinstance(a, Identity)]
            near = after[:1] or before[-1:]
            layer.init = near[0].init if near else "xavier"


def _fused(layers: Sequence[Layer]) -> list[tuple[Any, Linear | None]]:
    """The forward plan, decided once: (activation, linear) where an activation follows a
    Linear (computed in place into the Linear's fresh output, its bias add fused in where the
    ops can), (layer, None) for every other layer."""
    plan: list[tuple[Any, Linear | None]] = []
    i = 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Linear) and isinstance(after, Activation):
            plan.append((after, layer))
            i += 2
        else:
            plan.append((layer, None))
            i += 1
    return plan


class Sequential:
    """A net of `layers` on `backend` and `device`, in `dtype`.

    Layers built without a backend take the net's; their parameters start from
    `numpy.random.default_rng(seed)` on the host, drawn layer by layer in order, so one seed
    gives bit-identical weights on every backend. A layer built with parameters of its own
    (on this backend and dtype) keeps their values. All parameters live in one
    `ParameterBuffer` (`parameter_buffer`): views of one flat array where the library allows
    (NumPy, PyTorch, CuPy, array-api-strict), with `backward` writing the gradients into views
    of another, so an optimizer updates the whole net in one call; packed on request
    elsewhere (JAX)."""

    def __init__(
        self,
        layers: Iterable[Layer],
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: int = 0,
    ) -> None:
        self.layers: list[Layer] = list(layers)
        for i, layer in enumerate(self.layers, 1):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {layer!r}, not an xpnet.Layer")
            if layer._in_net or any(layer is other for other in self.layers[: i - 1]):
                raise ValueError(f"layer {i} ({layer!r}) is in a net already: make a new one")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.backend: Backend = get_backend(backend, device)
        self.dtype_name: str = dtype_name(dtype)
        self.dtype: Any = self.backend.dtype(dtype)
        self.seed: int = int(seed)
        sizes = widths(self.layers)
        self.n_in: int = sizes[0]
        self.n_out: int = sizes[-1]
        _choose_inits(self.layers)
        names = parameter_names(self.layers)
        if not any(names):
            raise ValueError("a net needs at least one layer with parameters, e.g. xpnet.Linear")
        self.parameter_buffer: ParameterBuffer = ParameterBuffer(self._initial(names))
        for layer, named in zip(self.layers, names, strict=True):
            layer.place(self.backend, self.dtype_name)
            if named:
                layer.attach(self.parameter_buffer, named)
            layer._in_net = True
        self._plan: list[tuple[Any, Linear | None]] = _fused(self.layers)
        self._first_trained: int = next(i for i, named in enumerate(names) if named)
        self._input_type: Any = None  # the array type of inputs that passed the checks
        self._output_shape: tuple[int, ...] | None = None  # of the last forward's outputs

    def _initial(self, names: list[dict[str, str]]) -> dict[str, Array]:
        """Every parameter's starting value on the net's backend, by name: drawn from the seed,
        or the values of a layer that has its own (cast to the net's dtype)."""
        rng = new_generator(self.seed)
        initial: dict[str, Array] = {}
        for i, (layer, named) in enumerate(zip(self.layers, names, strict=True), 1):
            if not named:
                continue
            own = layer.backend
            if layer.parameter_buffer is None or own is None:
                values = layer.initial_parameters(rng)
            elif (own.name, str(own.device)) != (self.backend.name, str(self.backend.device)):
                raise BackendError(
                    f"layer {i} ({layer!r}) was built on {own} but the net is on "
                    f"{self.backend}: build it without backend= and the net places it"
                )
            else:
                values = layer.params
            for key, value in values.items():
                initial[named[key]] = asarray(value, like=self)
        return initial

    # -- the architecture, as the checkpoint stores it ------------------------------------
    def config(self) -> dict[str, Any]:
        """What rebuilds this net: its layers (type, class and config each), dtype and seed."""
        return {
            "layers": [layer_config(layer) for layer in self.layers],
            "dtype": self.dtype_name,
            "seed": self.seed,
        }

    @property
    def output(self) -> str:
        """The output activation's name: the last layer's if it is an activation, else
        "identity" (the net emits what its last layer computes)."""
        last = self.layers[-1]
        return last.name if isinstance(last, Activation) else "identity"

    # -- forward and backward -------------------------------------------------------------
    def check_input(self, X: Array, what: str = "X") -> None:
        """Raise a clear error unless X is (batch, n_in), of the net's dtype, backend and device.

        An array of the type that passed before needs only attribute compares (once per step,
        cheap); anything else takes the full check, which names the problem."""
        if (
            type(X) is self._input_type
            and X.dtype == self.dtype
            and X.ndim == 2
            and X.shape[1] == self.n_in
            and getattr(X, "device", "cpu") == self.backend.device
        ):
            return
        check_placement(X, self.backend, what)
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(
                f"{what} has shape {tuple(X.shape)} but the net expects (batch, {self.n_in}): "
                f"{self.n_in} features per sample"
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
        """Outputs (batch, n_out) for inputs X (batch, n_in); each layer caches what its
        backward needs."""
        self.check_input(X)
        for layer, linear in self._plan:
            X = layer.forward(X) if linear is None else layer.forward_linear(linear, X)
        self._output_shape = X.shape
        return X

    def backward(self, gY: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dL/dY through the layers; set `grads` and return dL/dX (or None, when
        `input_grad` is False, stopping at the first layer with parameters and skipping its
        input product)."""
        if type(gY) is not self._input_type or gY.shape != self._output_shape:
            self._check_output_grad(gY)
        first = 0 if input_grad else self._first_trained
        layers = self.layers
        g = gY
        for layer in reversed(layers[first + 1 :]):
            g = layer.backward(g)
        if input_grad:
            g = layers[0].backward(g)
        else:
            layers[first].backward_parameters(g)
            g = None
        self.parameter_buffer.sort_grads()
        return g

    def _check_output_grad(self, gY: Array) -> None:
        """Raise a clear error unless gY is dL/dY for the outputs of the last forward."""
        if self._output_shape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward: run net.forward(X) first"
            )
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
                f"state_dict does not match the net {self.describe()}: missing keys {missing}, "
                f"unexpected keys {extra}; build the net with the layers the state was saved from"
            )
        new = {}
        for name, shape in expected.items():
            value = asarray(state[name], like=self)  # lists too; moved and cast explicitly
            got = tuple(value.shape)
            if got != shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {got} but the net needs {shape}; "
                    "build the net with the layers the state was saved from"
                )
            new[name] = self.backend.xp.asarray(value, copy=True)
        self.parameter_buffer.load(new)

    def to(
        self, backend: str | Backend | None = None, device: Any = None, dtype: str | None = None
    ) -> Sequential:
        """A copy of this net on another backend, device or dtype (an explicit move)."""
        from .model import net_from_config  # the config names Sequential or MLP

        if backend is None:
            backend = self.backend if device is None else self.backend.name
        target = get_backend(backend, device)
        net = net_from_config({**self.config(), "dtype": dtype or self.dtype_name}, target)
        net.load_state_dict(self.parameters())
        return net

    def describe(self) -> str:
        """The widths into the net and out of each layer with parameters (and of the net),
        e.g. "64 -> 32 -> 10"."""
        sizes = widths(self.layers)
        shown = [sizes[0]] + [
            n for layer, n in zip(self.layers, sizes[1:], strict=True) if layer.parameter_names
        ]
        if shown[-1] != sizes[-1] or len(shown) == 1:
            shown.append(sizes[-1])
        return " -> ".join(map(str, shown))

    def __repr__(self) -> str:
        return (
            f"Sequential({self.layers}, backend={self.backend.name!r}, "
            f"device={str(self.backend.device)!r}, dtype={self.dtype_name!r})"
        )
