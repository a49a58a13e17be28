"""Training epochs compiled as one unit where the net's library can (`ops.<library>.
compile_epoch`: on JAX one `jax.jit` of a `lax.scan` over an epoch's full batches; on
torch-cuda each step replayed from one CUDA graph), with the eager step, op by op, as the
reference the tests compare it with.

A compiled step traces the very same code as an eager one: the layers' forward and backward,
the loss, the buffer's packing and the optimizer's `rule` with the step count and learning
rate as traced numbers. Only classes that say so (`traceable = True` in the class that
defines their math) are traced: a layer or optimizer of a user's own that reads a number on
the host, keeps random state or updates statistics as a side effect runs eagerly instead."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from . import ops
from .layers import Layer
from .losses import Loss
from .optim import Optimizer
from .scoring import Tally, correct_count
from .sequential import Sequential

__all__ = ["CompiledEpochs", "compiled_epochs", "declares_traceable"]

Array = Any


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
        self._run = compile_epoch(self._step, score, net.parameter_buffer.flat_parameters())

    @property
    def compiles(self) -> bool:
        """Whether the library compiles epochs for this net's device (torch: CUDA only)."""
        return self._run is not None

    def _step(
        self, P: Array, state: dict[str, Array], X: Array, T: Array, numbers: Any
    ) -> tuple[Array, dict[str, Array], Array, Array]:
        """One training step as a function of its inputs: what the compiler traces."""
        net, loss = self.net, self.loss
        buffer = net.parameter_buffer
        buffer.store_flat_parameters(P)
        Y = net.run_forward(X)
        value = loss.forward(Y, T)
        net.run_backward(loss.backward(), input_grad=False)
        state = dict(state)
        P = self.optimizer.rule(P, buffer.flat_gradients(), state, numbers, buffer.layout)
        return P, state, value, Y

    def run(self, X: Array, T: Array, batch: int, tally: Tally) -> int:
        """Train the len(X) // batch full batches of X, T in order and tally them; returns the
        number of rows trained."""
        steps = X.shape[0] // batch
        if not steps:
            return 0
        buffer, optimizer = self.net.parameter_buffer, self.optimizer
        P = buffer.flat_parameters()
        optimizer.prepare(P, buffer.layout)
        numbers = [
            optimizer.step_numbers(optimizer.t + i, optimizer.current_lr)
            for i in range(1, steps + 1)
        ]
        P, state, total, correct = self._run(
            P, optimizer.slot_state(), X, T, _stacked(numbers, P), batch=batch
        )
        buffer.store_flat_parameters(P)
        buffer.grads.clear()  # the trace's, not arrays
        optimizer.took_steps(state, steps)
        tally.add_totals(total, correct, steps * batch)
        return steps * batch


# net -> {what its compiled epochs were traced with: them}, so that fit called once per epoch
# (as the CLI's callers and benchmarks do) compiles once, not once per call
_MADE: weakref.WeakKeyDictionary[Sequential, dict[tuple[Any, ...], CompiledEpochs]] = (
    weakref.WeakKeyDictionary()
)


def _traced_with(loss: Loss, optimizer: Optimizer, classify: bool) -> tuple[Any, ...]:
    """What a trace bakes in: the loss's and optimizer's classes and the optimizer's
    hyperparameters but its learning rate (which reaches the trace as a number per step)."""
    settings = {k: v for k, v in optimizer.hyperparameters().items() if k != "lr"}
    return type(loss), type(optimizer), repr(sorted(settings.items())), classify


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
    key = _traced_with(loss, optimizer, classify)
    if key not in made:
        made[key] = CompiledEpochs(net, loss, optimizer, compile_epoch, classify)
    runner = made[key]
    runner.loss, runner.optimizer = loss, optimizer  # this call's, with this call's state
    return runner if runner.compiles else None
