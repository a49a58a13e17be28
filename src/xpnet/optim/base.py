"""What every optimizer shares: the step counter, the learning rate of the current epoch, the
gradient hooks, flat state arrays and their checkpoint form.

An optimizer works on one flat parameter array P and one flat gradient array G (a model's
`ParameterBuffer` hands them out; bare arrays work too): `update(P, G)` returns the new P.
Its state is one flat array per slot ("m", "v", "velocity"), laid out like P; `state_dict`
gives it per parameter name ("m.W1", ...) for checkpoints, so a file does not depend on the
layout. A subclass names itself (`class Adam(Optimizer, name="adam")`), which registers it
for checkpoints, and implements `update_rule` and `hyperparameters`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from array_api_compat import array_namespace, device

from .. import ops
from ..params import Layout, ParameterBuffer
from ..registry import lookup, own_name, register
from . import hooks
from .schedules import Constant, Schedule, schedule_from_config

__all__ = ["OPTIMIZERS", "Optimizer", "Trainable", "in_range", "optimizer_from_config", "positive"]

Array = Any

OPTIMIZERS: dict[str, type[Optimizer]] = {}  # name -> class, filled by subclassing


_BY_TYPE: dict[type, tuple[Any, Any]] = {}


def _namespace_and_ops(a: Array) -> tuple[Any, Any]:
    """The namespace and ops of an array, looked up once per array type (a step is too short
    to pay array_namespace's dispatch each time)."""
    found = _BY_TYPE.get(type(a))
    if found is None:
        xp = array_namespace(a)
        found = _BY_TYPE[type(a)] = (xp, ops.ops_for(xp))
    return found


class Trainable(Protocol):
    """What an optimizer needs of a model: its parameter buffer."""

    parameter_buffer: ParameterBuffer


def _real(value: Any) -> float | None:
    """A real number (Python's or any library's scalar, not a bool) as a float; else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def positive(name: str, value: Any) -> float:
    """`value` as a float, or a ValueError naming `name` unless it is a finite number > 0."""
    number = _real(value)
    if number is None or not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def in_range(name: str, value: Any, low: float, high: float, closed_high: bool = False) -> float:
    """`value` as a float, or a ValueError naming `name` unless low <= value < high (<= high
    when `closed_high`)."""
    number = _real(value)
    if number is None or not (low <= number <= high if closed_high else low <= number < high):
        bracket = "]" if closed_high else ")"
        raise ValueError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value!r}")
    return number


class Optimizer:
    """Base of the update rules. `lr` is the base learning rate; `schedule` scales it per
    epoch; `weight_decay` adds weight_decay * W to the gradient of every weight matrix (not
    the biases) and `clip_norm` scales the whole gradient down to that Euclidean norm, in that
    order, clipping first, before the update rule sees it (PyTorch's order; AdamW applies its
    decay in the update instead)."""

    name: ClassVar[str] = ""
    slots: tuple[str, ...] = ()  # the state this optimizer keeps per parameter
    # a learning rate that trains small MLPs well in tens of epochs (`xpnet train` starts
    # from it); the constructor's own default may be more cautious (Adam's is PyTorch's)
    suggested_lr: ClassVar[float]
    default_weight_decay: ClassVar[float] = 0.0  # the constructor's weight_decay default
    # why a step's Python numbers change from step to step (a CUDA graph would freeze them)
    varies_per_step: ClassVar[str] = ""
    # True: the update rule applies weight_decay itself (AdamW), not as a gradient hook
    decoupled_weight_decay: ClassVar[bool] = False

    def __init_subclass__(cls, name: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        register(OPTIMIZERS, cls, name, "optimizer")

    def __init__(
        self,
        lr: float,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        self.lr = positive("learning rate", lr)
        self.weight_decay = in_range("weight_decay", weight_decay, 0.0, math.inf)
        self.clip_norm = None if clip_norm is None else positive("clip_norm", clip_norm)
        self.schedule = schedule if schedule is not None else Constant()
        self.current_lr = self.lr * self.schedule.factor(0)
        self.t = 0
        self._state: dict[str, Array] = {}  # slot -> flat array, laid out like P
        self._layout: Layout | None = None  # the layout _state follows (None: bare arrays)
        self._pending: dict[str, Array] = {}  # per-name state loaded, flattened at next update
        self._mask: tuple[Layout | None, Array] | None = None  # weight mask, by layout

    # -- the step -------------------------------------------------------------------------
    def step(
        self,
        model: Trainable,
        G: Array | None = None,
        reduce: Callable[[Array], Array] | None = None,
    ) -> None:
        """Update the model's parameters from flat gradient G, laid out like its parameter
        buffer (None: the gradients of its last backward), passed through `reduce` first when
        given (data-parallel training sums it over processes there). The one place where a
        net's parameters follow a gradient: `train.step` and the scikit-learn solvers call it."""
        buffer = model.parameter_buffer
        if G is None:
            G = buffer.flat_gradients()
        if reduce is not None:
            G = reduce(G)
        buffer.store_flat_parameters(self.update(buffer.flat_parameters(), G, buffer.layout))

    def update(self, P: Array, G: Array, layout: Layout | None = None) -> Array:
        """One step on the flat parameters P with flat gradient G; returns the new P (P itself,
        updated in place, where the array allows it). `layout` names the pieces of P (a
        model's; None for bare arrays: all of P is one weight)."""
        if G.shape != P.shape:
            raise ValueError(f"gradient shape {tuple(G.shape)} != parameter shape {tuple(P.shape)}")
        if layout is not self._layout or (self.slots and not self._state):
            self._adopt(P, layout)  # the weight mask is made by the first rule that needs it
        self.t += 1
        return self.rule(P, G, self._state, self.step_numbers(self.t, self.current_lr), layout)

    def step_numbers(self, t: int, lr: float) -> Any:
        """The numbers step t (from 1) of the update rule needs, computed on the host as
        Python floats (a float, or a tuple of them): the learning rate by default; Adam's bias
        corrections. A compiled epoch computes every step's alike and hands them to the device
        as arrays, so both paths round them the same way."""
        return lr

    def rule(
        self, P: Array, G: Array, state: dict[str, Array], numbers: Any, layout: Layout | None
    ) -> Array:
        """The step as a function of what changes from step to step: the new P from P and G
        (hooks, then the update rule), with the slot arrays in `state` (rebound there when the
        ops return new ones) and this step's `step_numbers`. `update` passes its own state and
        Python floats; a compiled training step passes traced ones (JAX), so nothing here may
        read a number on the host."""
        xp, fns = _namespace_and_ops(P)
        if self.clip_norm is not None:
            G = hooks.clip_grad_norm(G, self.clip_norm, xp)
        if self.weight_decay and not self.decoupled_weight_decay:
            G = hooks.weight_decay(G, P, self.weight_decay, self._weight_mask(P, layout))
        return self.update_rule(P, G, state, numbers, xp, fns)

    def slot_state(self) -> dict[str, Array]:
        """The state's flat arrays by slot (the live ones), for a compiled step to take in."""
        return dict(self._state)

    def took_steps(self, state: dict[str, Array], steps: int) -> None:
        """Take the state a compiled computation returns after `steps` steps of `rule`."""
        self._state = dict(state)
        self.t += steps

    def prepare(self, P: Array, layout: Layout | None) -> None:
        """Lay the state and the weight mask out for P before a compiled step traces `rule`
        (which must find them made, not make them)."""
        if layout is not self._layout or (self.slots and not self._state):
            self._adopt(P, layout)
        if self.weight_decay:
            self._weight_mask(P, layout)

    def update_rule(
        self, P: Array, G: Array, state: dict[str, Array], numbers: Any, xp: Any, fns: Any
    ) -> Array:
        """The update rule: the new P from P and the hooked gradient G, with the slot arrays in
        `state` (replace them there when the ops return new ones) and the step's
        `step_numbers`; `fns` are the ops for namespace `xp`."""
        raise NotImplementedError

    # -- schedules ------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        """Set `current_lr` for epoch `epoch` (0, 1, ...) from the schedule."""
        self.current_lr = self.lr * self.schedule.factor(epoch)

    def end_epoch(self, record: Mapping[str, float]) -> None:
        """Let the schedule see the record of the epoch that ended."""
        self.schedule.observe(record)

    def check_capturable(self) -> None:
        """Raise ValueError unless every number this optimizer hands its update kernel stays
        the same from step to step, as a CUDA graph (ops.torch.capture) replays them."""
        reason = self.varies_per_step
        if not reason and not (
            type(self.schedule) is Constant and self.schedule.warmup_epochs == 0
        ):
            reason = f"its learning rate follows the schedule {self.schedule!r}"
        if reason:
            raise ValueError(
                f"{type(self).__name__} cannot be captured in a CUDA graph: {reason}, and a "
                "graph replays the numbers of the step it recorded; run it uncaptured, or "
                "capture SGD or momentum with a constant learning rate"
            )

    # -- state ----------------------------------------------------------------------------
    def _adopt(self, P: Array, layout: Layout | None) -> None:
        """Lay the state out like P: state kept so far (per name, from `state_dict` form) is
        copied into place, zeros elsewhere. Refuses state of another net's layout."""
        if self._state and layout != self._layout:
            raise ValueError(
                "this optimizer's state belongs to a net with another set of parameters; "
                "use a new optimizer for each net"
            )
        pending = self._pending or self._per_name(copy=False)
        xp = array_namespace(P)
        where = device(P)
        self._state = {}
        for slot in self.slots:
            if layout is None:
                value = pending.get(slot)
                flat = xp.zeros_like(P) if value is None else xp.reshape(value, (-1,))
            else:
                pieces = []
                for name, start, stop, _ in layout:
                    value = pending.get(f"{slot}.{name}")
                    if value is None:
                        pieces.append(xp.zeros((stop - start,), dtype=P.dtype, device=where))
                    else:
                        pieces.append(xp.reshape(xp.asarray(value, dtype=P.dtype), (-1,)))
                flat = xp.concat(pieces) if len(pieces) > 1 else xp.asarray(pieces[0], copy=True)
            self._state[slot] = flat
        self._layout = layout
        self._pending = {}

    def _weight_mask(self, P: Array, layout: Layout | None) -> Array | None:
        """1 over the weight matrices (parameters of 2 or more dimensions), 0 over biases; None
        when every element is a weight. Built once per layout."""
        if layout is None or all(len(s.shape) >= 2 for s in layout):
            return None
        if self._mask is None or self._mask[0] is not layout:
            self._mask = (layout, hooks.weight_mask(P, layout))
        return self._mask[1]

    def _per_name(self, copy: bool) -> dict[str, Array]:
        """The state as {"<slot>.<name>": array} (per slot when the layout is None)."""
        out: dict[str, Array] = dict(self._pending)
        for slot, flat in self._state.items():
            xp = array_namespace(flat)
            if self._layout is None:
                out[slot] = xp.asarray(flat, copy=True) if copy else flat
                continue
            for name, start, stop, shape in self._layout:
                piece = xp.reshape(flat[start:stop], shape)
                out[f"{slot}.{name}"] = xp.asarray(piece, copy=True) if copy else piece
        return out

    @property
    def state(self) -> dict[str, Array]:
        """The state arrays by "<slot>.<parameter name>" (views of the flat state where the
        library has views: read them, do not keep them across steps)."""
        return self._per_name(copy=False)

    def state_dict(self) -> dict[str, Any]:
        """{"t": steps taken, "<slot>.<param>": a copy of that array, ...} for checkpoints."""
        return {"t": self.t, **self._per_name(copy=True)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take copies of the state another optimizer of this kind saved; keys must be "t" or
        "<slot>.<param>" with one of this optimizer's slots. The arrays are laid out at the
        next update."""
        unknown = sorted(k for k in state if k != "t" and k.partition(".")[0] not in self.slots)
        if unknown:
            raise KeyError(
                f"{type(self).__name__} keeps state {list(self.slots) or 'none'}, not {unknown}; "
                "load the state into the optimizer that saved it"
            )
        self.t = int(state.get("t", 0))
        self._pending = {
            k: array_namespace(v).asarray(v, copy=True) for k, v in state.items() if k != "t"
        }
        self._state, self._layout = {}, None

    # -- what rebuilds it -----------------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments (JSON values), so that type(self)(**them) rebuilds it;
        the schedule is saved apart, by `config`."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}

    def config(self) -> dict[str, Any]:
        """{"name", "hyperparameters", "schedule", "schedule_state"}: what
        `optimizer_from_config` rebuilds this optimizer from (its arrays aside)."""
        return {
            "name": own_name(OPTIMIZERS, type(self)),
            "hyperparameters": self.hyperparameters(),
            "schedule": self.schedule.config(),
            "schedule_state": self.schedule.state_dict(),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args}, schedule={self.schedule!r})"


def optimizer_from_config(config: Mapping[str, Any]) -> Optimizer:
    """The optimizer `Optimizer.config()` describes, without its arrays (load those with
    `load_state_dict`). A config without a schedule (older checkpoints) gets a constant one."""
    cls = lookup(OPTIMIZERS, config.get("name"), "optimizer")
    hyper = dict(config.get("hyperparameters", {}))
    schedule = schedule_from_config(config.get("schedule") or {"name": "constant"})
    schedule.load_state_dict(config.get("schedule_state") or {})
    return cls(**hyper, schedule=schedule)
