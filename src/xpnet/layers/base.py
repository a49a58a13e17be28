"""What every layer shares: `forward`/`backward`, its parameters declared by name and shape, the
buffer they live in, its config for checkpoints and its name in the layer registry.

A layer of your own is a subclass in your own file:

    class Square(xpnet.Layer, name="square"):      # the name lets xpnet.load rebuild it
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, grad):
            return 2 * self.x * grad

A layer with parameters also declares them (`parameter_shapes`, and `initial_parameters` if
zeros are the wrong start), reads them from `params` and sets its gradients with `set_grad`;
one whose constructor takes arguments returns them from `config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..backend import Backend, asarray, get_backend
from ..params import ParameterBuffer
from ..registry import lookup, own_name, register
from ..rng import new_generator

__all__ = ["LAYERS", "Layer", "layer_config", "layer_from_config"]

Array = Any

LAYERS: dict[str, type[Layer]] = {}  # name -> class, filled by subclassing


class Layer:
    """Base of every layer: `forward(x)` caches what `backward(grad)` needs, and `backward` turns
    dL/d(output) into dL/d(input) by the chain rule, setting the gradients of the layer's
    parameters (overwritten each call, never summed).

    `input_width` is the number of features the layer takes (None: any, for a layer that keeps
    the width, as activations do); `output_width(n)` the number it gives for n."""

    name: ClassVar[str] = ""
    input_width: int | None = None
    sublayers: Sequence[Layer] = ()  # a container's layers (Residual's), placed by the net
    training: bool = True  # False in evaluation: dropout off, batch norm on running statistics
    # True where the class that defines forward and backward says they are functions of their
    # inputs and parameters alone (no host reads, no random or side state), so a compiled
    # step may trace them (compiled.py); a subclass that redefines them must say so again
    traceable: ClassVar[bool] = False
    backend: Backend | None = None  # where the layer's arrays live, set when it is placed
    dtype_name: str = "float32"
    parameter_buffer: ParameterBuffer | None = None  # set when the layer is placed
    parameter_names: Mapping[str, str] = {}  # parameter key -> its name in the buffer
    statistics: Mapping[str, Array] = {}  # statistic key -> its array, set by the net
    _standalone: tuple[str, Any] = ("float32", 0)  # dtype and seed when placed alone on NumPy
    _in_net: bool = False

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register(LAYERS, cls, name, "layer")

    # -- the architecture -----------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this layer (JSON values); none by default."""
        return {}

    def output_width(self, n_in: int) -> int:
        """The features this layer gives for `n_in` features in: the same by default."""
        return n_in

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """{key: shape} of the layer's parameters, in the order they are laid out; none by
        default. The net names them key + k for the k-th layer with parameters (W1, b1, ...)."""
        return {}

    def initial_parameters(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Host float64 starting values for `parameter_shapes`, drawn from `rng` (the net passes
        one generator through its layers in order, so one seed gives one net): zeros unless a
        layer says otherwise."""
        return {key: np.zeros(shape) for key, shape in self.parameter_shapes().items()}

    def statistic_shapes(self) -> dict[str, tuple[int, ...]]:
        """{key: shape} of the layer's statistics: state a checkpoint keeps but no optimizer
        trains (BatchNorm's running mean and variance); none by default."""
        return {}

    def initial_statistics(self) -> dict[str, np.ndarray]:
        """Host float64 starting values for `statistic_shapes` (zeros unless a layer says
        otherwise); the net keeps them, on its device, in the layer's `statistics`."""
        return {key: np.zeros(shape) for key, shape in self.statistic_shapes().items()}

    # -- modes and randomness -----------------------------------------------------------------
    def train(self, mode: bool = True) -> None:
        """Training (True) or evaluation (False) mode, for this layer and its sublayers."""
        self.training = bool(mode)
        for layer in self.sublayers:
            layer.train(mode)

    def reseed(self, entropy: Sequence[int]) -> None:
        """Start the layer's random draws afresh from `entropy` (the net passes its seed, and
        fit the run's seed and the epoch, so a resumed run draws what an uninterrupted one
        would have); a layer without randomness ignores it."""

    # -- placement --------------------------------------------------------------------------
    def place(self, backend: Backend, dtype: str) -> None:
        """Say where the layer's arrays live (its net's backend and dtype, or its own); its
        statistics start there from `initial_statistics`."""
        self.backend, self.dtype_name = backend, dtype
        self.statistics = {
            key: asarray(value, like=backend, dtype=dtype)
            for key, value in self.initial_statistics().items()
        }
        for layer in self.sublayers:
            layer.place(backend, dtype)

    def attach(self, buffer: ParameterBuffer, names: Mapping[str, str]) -> None:
        """Keep the parameters in `buffer`, where parameter `key` is called `names[key]`."""
        self.parameter_buffer = buffer
        self.parameter_names = dict(names)

    def place_alone(
        self,
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: str = "float32",
        seed: Any = 0,
    ) -> None:
        """Give the layer a buffer of its own, for use outside a net (a net places its layers
        itself). `seed` is an int or a numpy Generator."""
        place = get_backend(backend, device)
        self.place(place, dtype)
        rng = seed if isinstance(seed, np.random.Generator) else new_generator(seed)
        values = self.initial_parameters(rng)
        if values:
            initial = {k: asarray(v, like=place, dtype=dtype) for k, v in values.items()}
            self.attach(ParameterBuffer(initial), {k: k for k in initial})

    def _buffer(self) -> ParameterBuffer:
        """The buffer of the layer's parameters; a layer used on its own that was built without
        a backend is placed on NumPy now."""
        if self.parameter_buffer is None:
            self.place_alone("numpy", None, *self._standalone)
        if self.parameter_buffer is None:
            raise RuntimeError(f"{self!r} has no parameters")
        return self.parameter_buffer

    # -- parameters and gradients -------------------------------------------------------------
    @property
    def params(self) -> dict[str, Array]:
        """{key: the live parameter array} (set them with `set_parameter`)."""
        if not self.parameter_names and not self.parameter_shapes():  # a placed layer with
            return {}  # parameters skips the declaration (LayerNorm reads these every step)
        params = self._buffer().params
        return {key: params[name] for key, name in self.parameter_names.items()}

    @property
    def grads(self) -> dict[str, Array]:
        """{key: dL/dparameter} of the last backward (empty before one)."""
        if self.parameter_buffer is None:
            return {}
        grads = self.parameter_buffer.grads
        return {key: grads[name] for key, name in self.parameter_names.items() if name in grads}

    def parameters(self) -> dict[str, Array]:
        return self.params

    def set_parameter(self, key: str, value: Array) -> None:
        """Make `value` (the layer's backend, dtype and shape) parameter `key`: copied into the
        buffer where it keeps views."""
        buffer = self._buffer()
        if key not in self.parameter_names:
            raise KeyError(f"{self!r} has parameters {list(self.parameter_names)}, not {key!r}")
        buffer.set(self.parameter_names[key], value)

    def set_grad(self, key: str, value: Array) -> None:
        """Record dL/d(parameter `key`) from this backward (what the optimizer applies)."""
        self._buffer().grads[self.parameter_names[key]] = value

    # -- the math -----------------------------------------------------------------------------
    def forward(self, x: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} defines no forward(x)")

    def backward(self, grad: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} defines no backward(grad)")

    def backward_parameters(self, grad: Array) -> None:
        """backward for the first layer with parameters of a net in training, where dL/dx is
        not needed: layers that can skip computing it (Linear) do."""
        self.backward(grad)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def layer_config(layer: Layer) -> dict[str, Any]:
    """How a checkpoint stores a layer: its registered type, its class (for messages) and its
    config."""
    cls = type(layer)
    name = own_name(LAYERS, cls)
    return {"type": name, "class": f"{cls.__module__}.{cls.__qualname__}", "config": layer.config()}


def layer_from_config(entry: Any) -> Layer:
    """The layer a checkpoint's `layer_config` entry describes; its class must be registered
    (its module imported), or the error names the class."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"a layer entry must be an object with type and config, got {entry!r}")
    try:
        cls = lookup(LAYERS, entry.get("type"), "layer")
    except ValueError as err:
        raise ValueError(
            f"{err} (it names {entry.get('class', 'a class')}): import the module that defines "
            "that layer before loading"
        ) from err
    return cls(**entry.get("config", {}))
