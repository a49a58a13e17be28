"""Training epochs compiled as one unit where the net's library can (`ops.<library>.
compile_epoch`: on JAX one `jax.jit` of a `lax.scan` over an epoch's full batches; on
torch-cuda each step replayed from one CUDA graph), with the eager step, op by op, as the
reference the tests compare it with.

A compiled step traces the very same code as an eager one: the layers' forward and backward,
the loss, the buffer's packing and the optimizer's `rule` (under "16-mixed" the loss
scaler's) with the step's numbers as traced arrays. The host works out the numbers of steps
t + 1 .. t + k of an epoch of k steps once, as one table; each step reads the row that a count
of the steps taken, kept on the device, points at. A step that overflowed under "16-mixed"
is skipped there without advancing the count, so the next one reads the same row, as the
eager step's host count would give it, and the table never runs short.

Only classes that say so (`traceable = True` in the class that defines their math) are
traced: a layer or optimizer of a user's own that reads a number on the host, keeps random
state or updates statistics as a side effect runs eagerly instead."""

from __future__ import annotations

import weakref
from typing import Any

import array_api_extra as xpx
import numpy as np
from array_api_compat import array_namespace, device

from . import ops
from .backend import to_numpy
from .layers import Layer
from .losses import Loss
from .optim import Optimizer
from .scoring import Tally, correct_count
from .sequential import Sequential

__all__ = ["CompiledEpochs", "compiled_epochs", "declares_traceable"]

Array = Any

# the entry of a compiled epoch's state that counts its steps taken: the row of the numbers
# table the next step reads (a step skipped on overflow leaves it where it was)
_TAKEN = "steps taken"


def declares_traceable(obj: object, *methods: str) -> bool:
    """Whether each class of obj's that defines one of `methods` says `traceable = True` in its
    own body (a subclass that overrides the math must say so again)."""
    for name in methods:
        owner = next(cls for cls in type(obj).__mro__ if name in vars(cls))
        if vars(owner).get("traceable") is not True:
            return False
    return True


def _traceable(layers: list[Layer]) -> bool:
    """Whether every layer, container or inside one, declares its math traceable."""
    return all(
        declares_traceable(layer, "forward", "backward") and _traceable(list(layer.sublayers))
        for layer in layers
    )


def _stacked(numbers: list[Any], like: Array) -> Any:
    """Per-step numbers (trees of floats: `ops.generic.tree_map`'s) as one tree of arrays with
    a leading step axis, in like's dtype on its device, rounded once as an eager step rounds a
    Python float."""
    xp, where = array_namespace(like), device(like)

    def column(*values: float) -> Array:
        return xp.asarray(np.asarray(values, dtype=np.float64), dtype=like.dtype, device=where)

    return ops.generic.tree_map(column, *numbers)


class CompiledEpochs:
    """`run` trains an epoch's full batches as one compiled computation of the net's library
    and tallies them; the caller runs a short last batch eagerly."""

    def __init__(
        self, net: Sequential, loss: Loss, optimizer: Optimizer, compile_epoch: Any, classify: bool
    ) -> None:
        self.net, self.loss, self.optimizer = net, loss, optimizer
        xp = net.backend.xp
        score = (lambda Y, T: correct_count(Y, T, xp)) if classify else None
        P = net.parameter_buffer.flat_parameters()
        self._run = compile_epoch(self._step, score, P)
        # one counter for every epoch, reset in place where it can be: a CUDA graph keeps it
        self._taken = xp.zeros((), dtype=xp.int32, device=device(P))

    @property
    def compiles(self) -> bool:
        """Whether the library compiles epochs for this net's device (torch: CUDA only)."""
        return self._run is not None

    def _step(
        self, P: Array, state: dict[str, Array], X: Array, T: Array, table: Any
    ) -> tuple[Array, dict[str, Array], Array, Array]:
        """One training step as a function of its inputs: what the compiler traces. `state`
        holds the optimizer's slots, the steps taken (the row of `table` to use) and, under
        "16-mixed", the loss scaler's numbers."""
        net, loss, optimizer = self.net, self.loss, self.optimizer
        buffer, scaler, xp = net.parameter_buffer, net.loss_scaler, net.backend.xp
        state = dict(state)
        taken = state.pop(_TAKEN)
        if scaler is not None:
            scaler.take_numbers(state)
        row = xp.reshape(taken, (1,))
        numbers = ops.generic.tree_map(lambda column: xp.take(column, row)[0], table)
        buffer.store_flat_parameters(P)
        Y = net.run_forward(X)
        value = loss.forward(Y, T)
        if scaler is None:
            net.run_backward(loss.backward(), input_grad=False)
            P = optimizer.rule(P, buffer.flat_gradients(), state, numbers, buffer.layout)
            now = taken + 1
        else:
            net.run_backward(scaler.scaled(loss.backward()), input_grad=False)
            G = buffer.flat_gradients()
            P, finite = scaler.rule(optimizer, P, G, state, numbers, buffer.layout)
            now = taken + xp.astype(finite, taken.dtype)
            state.update(scaler.numbers())
        state[_TAKEN] = xpx.at(taken)[...].set(now)
        return P, state, value, Y

    def run(self, X: Array, T: Array, batch: int, tally: Tally) -> int:
        """Train the len(X) // batch full batches of X, T in order and tally them; returns the
        number of rows trained. The optimizer's step count advances by the steps taken, which
        under "16-mixed" the host reads once, at the end."""
        steps = X.shape[0] // batch
        if not steps:
            return 0
        buffer, optimizer, scaler = self.net.parameter_buffer, self.optimizer, self.net.loss_scaler
        P = buffer.flat_parameters()
        optimizer.prepare(P, buffer.layout)
        numbers = [
            optimizer.step_numbers(optimizer.t + i, optimizer.current_lr)
            for i in range(1, steps + 1)
        ]
        self._taken = xpx.at(self._taken)[...].set(0)
        state = {**optimizer.slot_state(), _TAKEN: self._taken}
        if scaler is not None:
            state.update(scaler.numbers())
        P, state, total, correct = self._run(P, state, X, T, _stacked(numbers, P), batch=batch)
        self._taken = state.pop(_TAKEN)
        if scaler is not None:
            scaler.take_numbers(state)
        buffer.store_flat_parameters(P)
        buffer.grads.clear()  # the trace's, not arrays
        optimizer.took_steps(state, steps if scaler is None else int(to_numpy(self._taken)))
        tally.add_totals(total, correct, steps * batch)
        return steps * batch


# net -> {what its compiled epochs were traced with: them}, so that fit called once per epoch
# (as the CLI's callers and benchmarks do) compiles once, not once per call
_MADE: weakref.WeakKeyDictionary[Sequential, dict[tuple[Any, ...], CompiledEpochs]] = (
    weakref.WeakKeyDictionary()
)


def _traced_with(
    net: Sequential, loss: Loss, optimizer: Optimizer, classify: bool
) -> tuple[Any, ...]:
    """What a trace bakes in: the net's precision policy (its products' dtype, loss scaling),
    the loss's and optimizer's classes and the optimizer's hyperparameters but its learning
    rate (which reaches the trace as a number per step)."""
    settings = {k: v for k, v in optimizer.hyperparameters().items() if k != "lr"}
    return net.precision.name, type(loss), type(optimizer), repr(sorted(settings.items())), classify


def compiled_epochs(
    net: Sequential, loss: Loss, optimizer: Optimizer, classify: bool
) -> CompiledEpochs | None:
    """The compiled epochs for this net, loss and optimizer (made once per net and kind of
    loss and optimizer), or None where the net's library compiles none or a class in it does
    not declare itself traceable."""
    compile_epoch = getattr(ops.ops_for(net.backend.xp), "compile_epoch", None)
    if compile_epoch is None:
        return None
    if not _traceable(net.layers):
        return None
    if not declares_traceable(optimizer, "update_rule"):
        return None
    made = _MADE.setdefault(net, {})
    key = _traced_with(net, loss, optimizer, classify)
    if key not in made:
        made[key] = CompiledEpochs(net, loss, optimizer, compile_epoch, classify)
    runner = made[key]
    runner.loss, runner.optimizer = loss, optimizer  # this call's, with this call's state
    return runner if runner.compiles else None
