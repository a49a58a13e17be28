"""A net of any layers in a row: `forward` runs them in order, `backward` in reverse.

Every parameter's name and shape come from its layer: the k-th layer that has parameters
names them key + k (W1 and b1 for a first Linear, W2 and b2 for the next, ...), which is
what checkpoints, memory estimates, `xpnet info` and the estimators ask for."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .backend import Backend, BackendError, asarray, check_placement, dtype_name, get_backend
from .layers import Activation, Layer, Linear, layer_config
from .layers.sequence import (
    Plan,
    backward_through,
    choose_inits,
    forward_plan,
    forward_through,
    has_parameters,
    layer_names,
    leaves,
    parameter_shapes,
    widths,
)
from .loss_scaling import LossScaler
from .memory import check_parameters_fit
from .params import ParameterBuffer
from .precision import FULL, Precision, as_precision, compute_dtype
from .rng import new_generator

__all__ = ["Sequential", "in_mode"]

Array = Any


@contextlib.contextmanager
def in_mode(net: Sequential, training: bool) -> Iterator[None]:
    """The net in training (True) or evaluation mode inside the block, back in the mode it had
    after it."""
    was = net.training
    net.train(training)
    try:
        yield
    finally:
        net.train(was)


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
        found = leaves(self.layers)
        for i, layer in enumerate(found):
            if layer._in_net or any(layer is other for other in found[:i]):
                raise ValueError(f"{layer!r} is in a net already: make a new one")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.backend: Backend = get_backend(backend, device)
        self.dtype_name: str = dtype_name(dtype)
        self.dtype: Any = self.backend.dtype(dtype)
        self.seed: int = int(seed)
        self.training: bool = True
        sizes = widths(self.layers)
        self.n_in: int = sizes[0]
        self.n_out: int = sizes[-1]
        choose_inits(self.layers)
        names = layer_names(self.layers)
        if not any(has_parameters(layer) for layer in self.layers):
            raise ValueError("a net needs at least one layer with parameters, e.g. xpnet.Linear")
        check_parameters_fit(parameter_shapes(self.layers), self.backend, self.dtype_name)
        self.parameter_buffer: ParameterBuffer = ParameterBuffer(self._initial(found, names))
        for layer in self.layers:
            layer.place(self.backend, self.dtype_name)
        for leaf, named in zip(found, names, strict=True):
            params = {key: named[key] for key in leaf.parameter_shapes()}
            if params:
                leaf.attach(self.parameter_buffer, params)
            leaf._in_net = True
        self._statistic_names: list[tuple[Layer, str, str]] = [
            (leaf, key, named[key])
            for leaf, named in zip(found, names, strict=True)
            for key in leaf.statistic_shapes()
        ]
        self._plan: Plan = forward_plan(self.layers)
        self._first_trained: int = next(  # the plan step of the first layer with parameters
            i for i, (layer, linear) in enumerate(self._plan) if has_parameters(linear or layer)
        )
        self._input_type: Any = None  # the array type of inputs that passed the checks
        self._output_shape: tuple[int, ...] | None = None  # of the last forward's outputs
        self.precision: Precision = FULL  # set_precision's policy
        self.loss_scaler: LossScaler | None = None  # dynamic loss scaling, for "16-mixed"
        self.reseed((self.seed,))

    def _initial(self, found: list[Layer], names: list[dict[str, str]]) -> dict[str, Array]:
        """Every parameter's starting value on the net's backend, by name: drawn from the seed
        leaf by leaf, or the values of a layer that has its own (cast to the net's dtype)."""
        rng = new_generator(self.seed)
        initial: dict[str, Array] = {}
        for leaf, named in zip(found, names, strict=True):
            if not leaf.parameter_shapes():
                continue
            own = leaf.backend
            if leaf.parameter_buffer is None or own is None:
                values = leaf.initial_parameters(rng)
            elif (own.name, str(own.device)) != (self.backend.name, str(self.backend.device)):
                raise BackendError(
                    f"{leaf!r} was built on {own} but the net is on {self.backend}: build it "
                    "without backend= and the net places it"
                )
            else:
                values = leaf.params
            for key, value in values.items():
                initial[named[key]] = asarray(value, like=self)
        return initial

    # -- modes ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Sequential:
        """Training mode (dropout drops, batch norm uses the batch's statistics and updates its
        running ones), or evaluation mode with `mode=False`. `fit` trains; `predict`,
        `evaluate` and validation evaluate, and put the mode back."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> Sequential:
        """Evaluation mode: dropout is the identity, batch norm uses its running statistics."""
        return self.train(False)

    def reseed(self, entropy: tuple[int, ...]) -> None:
        """Start every random layer's draws afresh from `entropy` (and its place in the net)."""
        for i, leaf in enumerate(leaves(self.layers)):
            leaf.reseed((*entropy, i))

    def set_precision(self, precision: str | Precision) -> None:
        """Train and infer under a precision policy ("32", "bf16-mixed", "16-mixed"; see
        `xpnet.precision`): the products from a low-precision copy of the parameters, cast
        once per forward, the parameters themselves staying in float32. A new policy starts
        a fresh loss scale; the one in use keeps its own. Raises ValueError where the backend
        cannot run it."""
        policy = as_precision(precision)
        if policy == self.precision:
            return
        self.parameter_buffer.set_compute_dtype(
            compute_dtype(policy, self.backend, self.dtype_name)
        )
        self.precision = policy
        P = self.parameter_buffer.flat_parameters()
        self.loss_scaler = LossScaler(P) if policy.loss_scaling else None

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
        if self.parameter_buffer.compute_dtype is None:  # the common case, one call shorter
            Y = forward_through(self._plan, X)
        else:
            Y = self.run_forward(X)
        self._output_shape = Y.shape
        return Y

    def run_forward(self, X: Array) -> Array:
        """`forward` without the input checks: what a compiled training step traces. Under
        mixed precision the parameters are cast first and the outputs come back in the net's
        dtype, so the loss is computed in float32."""
        buffer = self.parameter_buffer
        if buffer.compute_dtype is None:
            return forward_through(self._plan, X)
        buffer.refresh_compute()
        return self.backend.xp.astype(forward_through(self._plan, X), self.dtype)

    def backward(self, gY: Array, input_grad: bool = True) -> Array | None:
        """Backpropagate dL/dY through the layers; set `grads` and return dL/dX (or None, when
        `input_grad` is False, stopping at the first layer with parameters and skipping its
        input product)."""
        if (
            type(gY) is not self._input_type
            or gY.shape != self._output_shape
            or gY.dtype != self.dtype
        ):
            self._check_output_grad(gY)
        return self.run_backward(gY, input_grad)

    def run_backward(self, gY: Array, input_grad: bool = True) -> Array | None:
        """`backward` without the checks of gY: what a compiled training step traces."""
        first = 0 if input_grad else self._first_trained
        g = backward_through(self._plan[first + 1 :], gY)
        layer, linear = self._plan[first]
        if linear is not None:  # a planned block: its Linear skips dL/dx unless input_grad
            g = layer.backward_linear(linear, g, input_grad)
        elif input_grad:
            g = layer.backward(g)
        else:
            layer.backward_parameters(g)
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
        if gY.dtype != self.dtype:  # else the gradients would come back in gY's dtype
            raise ValueError(
                f"gY has dtype {gY.dtype} but the net is {self.dtype_name}; pass dL/dY in the "
                "net's dtype (xpnet.asarray(gY, like=net))"
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

    def statistics(self) -> dict[str, Array]:
        """{"running_mean2": ..., ...}: the live statistics of the layers that keep some."""
        return {name: leaf.statistics[key] for leaf, key, name in self._statistic_names}

    def live_state(self) -> dict[str, Array]:
        """The parameters and statistics by name: the live arrays (`state_dict` copies them)."""
        return {**self.parameters(), **self.statistics()}

    def state_dict(self) -> dict[str, Array]:
        """The parameters and statistics by name, as copies in the net's backend and device."""
        xp = self.backend.xp
        return {name: xp.asarray(p, copy=True) for name, p in self.live_state().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load copies of parameters from arrays of any supported library (moved and cast
        explicitly); missing, extra or wrong-shaped keys raise before anything changes."""
        expected = {name: tuple(p.shape) for name, p in self.live_state().items()}
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
        for leaf, key, name in self._statistic_names:
            leaf.statistics = {**leaf.statistics, key: new.pop(name)}
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
        net.load_state_dict(self.live_state())
        net.train(self.training)
        return net

    def describe(self) -> str:
        """The widths into the net and out of each layer with a Linear in it (and of the net),
        e.g. "64 -> 32 -> 10"."""
        sizes = widths(self.layers)
        shown = [sizes[0]] + [
            n
            for layer, n in zip(self.layers, sizes[1:], strict=True)
            if any(isinstance(leaf, Linear) for leaf in leaves([layer]))
        ]
        if shown[-1] != sizes[-1]:
            shown.append(sizes[-1])
        return " -> ".join(map(str, shown))

    def __repr__(self) -> str:
        return (
            f"Sequential({self.layers}, backend={self.backend.name!r}, "
            f"device={str(self.backend.device)!r}, dtype={self.dtype_name!r})"
        )
