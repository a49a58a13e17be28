"""Optimizers: `step(net)` moves every parameter against its gradient.

Parameters are updated in place where the array library allows it (`is_writeable_array`),
otherwise rebound (JAX-style immutable arrays). State is kept per parameter name, on the
parameter's device, and round-trips through `state_dict` for exact resumption.

A model whose `flat_buffers()` gives one flat array of all its parameters and one of their
gradients (an MLP on NumPy) is updated by one call over the whole net, with each state slot
one flat array too whose pieces are the per-name state entries: the same arithmetic,
element by element, as per-parameter updates, in a few calls instead of a few per
parameter."""

from __future__ import annotations

import math
from typing import Any, Protocol

from array_api_compat import array_namespace, is_writeable_array

from . import ops

Array = Any


class Trainable(Protocol):
    """What an optimizer needs of a model: its parameters and their gradients, by name."""

    def parameters(self) -> dict[str, Array]: ...
    def set_parameter(self, name: str, value: Array) -> None: ...

    @property
    def grads(self) -> dict[str, Array]: ...


def store_parameter(model: Trainable, name: str | None, p: Array, new: Array) -> None:
    """Make `new` the value of parameter `name` (currently `p`): nothing to do when an ops
    update already wrote into p, a copy into p when p is writeable, else a rebind."""
    if new is p:
        return
    if is_writeable_array(p):
        p[...] = new
    else:
        model.set_parameter(name, new)


def _copy(a: Array) -> Array:
    return array_namespace(a).asarray(a, copy=True)


_BY_TYPE: dict[type, tuple[Any, Any]] = {}


def _namespace_and_ops(p: Array) -> tuple[Any, Any]:
    """The namespace and ops module of an array, looked up once per array type."""
    found = _BY_TYPE.get(type(p))
    if found is None:
        xp = array_namespace(p)
        found = _BY_TYPE[type(p)] = (xp, ops.ops_for(xp))
    return found


class Optimizer:
    """Shared state handling: `state` maps "<slot>.<param name>" to arrays, `t` counts steps."""

    slots: tuple[str, ...] = ()  # the per-parameter state this optimizer keeps

    def __init__(self, lr: float) -> None:
        if not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.t = 0
        self.state: dict[str, Array] = {}
        self._flat_state: dict[str, Array] = {}  # slot -> flat array, laid out like _flat_for
        self._flat_for: Array = None  # the flat parameter array _flat_state belongs to

    def step(self, model: Trainable) -> None:
        grads = model.grads
        if not grads:
            raise RuntimeError("no gradients: call net.backward(...) before optimizer.step(net)")
        self.t += 1
        flat_buffers = getattr(model, "flat_buffers", None)
        flat = flat_buffers() if flat_buffers is not None else None
        if flat is not None:
            P, G, layout = flat
            if self._flat_for is not P:
                self._flatten_state(P, layout)
            xp, fns = _namespace_and_ops(P)
            self._update(model, None, P, G, xp, fns)
            return
        self._flat_for = None  # per-parameter steps may rebind state: rebuild flat state later
        params = model.parameters()
        xp, fns = _namespace_and_ops(next(iter(params.values())))  # once per step
        for name, p in params.items():
            self._update(model, name, p, grads[name], xp, fns)

    def _update(
        self, model: Trainable, name: str | None, p: Array, g: Array, xp: Any, fns: Any
    ) -> None:
        """Update parameter `name` (p) from its gradient g with the ops module `fns` (fast
        paths write in place) and `store_parameter` the result; name None: p and g are the model's
        flat arrays."""
        raise NotImplementedError

    def _slot(self, slot: str, name: str | None, like: Array) -> Array:
        """The state array `slot` of parameter `name` (zeros at first); name None: the flat
        one."""
        if name is None:
            return self._flat_state[slot]
        key = f"{slot}.{name}"
        if key not in self.state:
            self.state[key] = array_namespace(like).zeros_like(like)
        return self.state[key]

    def _keep(self, slot: str, name: str | None, old: Array, new: Array) -> None:
        """Make `new` the state array `slot` of parameter `name` (old: the one `_slot` gave)."""
        if name is not None:
            self.state[f"{slot}.{name}"] = new
        elif new is not old:  # the flat arrays are writeable
            old[...] = new

    def _flatten_state(self, P: Array, layout: list[tuple[str, int, int, tuple[int, ...]]]) -> None:
        """One flat array per slot, laid out like P, holding the state kept so far (zeros where
        none); the per-name entries of `state` become views of it."""
        xp = array_namespace(P)
        self._flat_state = {}
        for slot in self.slots:
            flat = xp.zeros_like(P)
            for name, start, stop, shape in layout:
                key = f"{slot}.{name}"
                old = self.state.get(key)
                self.state[key] = view = xp.reshape(flat[start:stop], shape)
                if old is not None:
                    view[...] = old
            self._flat_state[slot] = flat
        self._flat_for = P

    def state_dict(self) -> dict[str, Any]:
        """{"t": steps taken, "<slot>.<param>": a copy of that array, ...} for checkpoints."""
        return {"t": self.t, **{k: _copy(v) for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take copies of the state another optimizer of this kind saved; keys must be "t" or
        "<slot>.<param>" with one of this optimizer's slots."""
        unknown = sorted(k for k in state if k != "t" and k.partition(".")[0] not in self.slots)
        if unknown:
            raise KeyError(
                f"{type(self).__name__} keeps state {list(self.slots) or 'none'}, not {unknown}; "
                "load the state into the optimizer that saved it"
            )
        self.t = int(state.get("t", 0))
        self.state = {k: _copy(v) for k, v in state.items() if k != "t"}
        self._flat_for = None  # flat state is rebuilt from these at the next flat step

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr})"


class SGD(Optimizer):
    """p <- p - lr * g; with momentum mu: v <- mu * v + g, p <- p - lr * v (PyTorch's form)."""

    def __init__(self, lr: float = 0.5, momentum: float = 0.0) -> None:
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.slots = ("velocity",) if self.momentum else ()

    def _update(self, model, name, p, g, xp, fns):
        if self.momentum:
            v = self._slot("velocity", name, p)
            new, v_new = fns.momentum_update(p, g, v, self.lr, self.momentum, xp)
            self._keep("velocity", name, v, v_new)
        else:
            new = fns.sgd_update(p, g, self.lr, xp)
        if new is not p:
            store_parameter(model, name, p, new)

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Momentum(SGD):
    """SGD with momentum 0.9 by default."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.9) -> None:
        super().__init__(lr, momentum)


class Adam(Optimizer):
    """Adam (Kingma & Ba) in PyTorch's form, p <- p - lr * m_hat / (sqrt(v_hat) + eps); the bias
    corrections are Python floats, so a step needs no host synchronisation."""

    def __init__(
        self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.slots = ("m", "v")

    def _update(self, model, name, p, g, xp, fns):
        m = self._slot("m", name, p)
        v = self._slot("v", name, p)
        correction2 = math.sqrt(1.0 - self.beta2**self.t)
        step = self.lr / (1.0 - self.beta1**self.t)
        hyper = (step, self.beta1, self.beta2, self.eps, correction2)
        new, m_new, v_new = fns.adam_update(p, g, m, v, hyper, xp)
        self._keep("m", name, m, m_new)
        self._keep("v", name, v, v_new)
        store_parameter(model, name, p, new)

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
