"""Scoring a net: its outputs for new data (`predict`), loss and accuracy (`evaluate`), the
label rule that turns outputs into classes, and the on-device tally `fit` shares."""

from __future__ import annotations

from typing import Any

from .backend import index_dtype, to_numpy
from .distributed import Communicator
from .inputs import is_classification, prepare, to_net
from .losses import Loss, SSELoss
from .sequential import Sequential, in_mode

__all__ = [
    "Tally",
    "batch_bounds",
    "correct_count",
    "evaluate",
    "evaluate_prepared",
    "predict",
    "predicted_labels",
]

Array = Any


def predicted_labels(Y: Array, xp: Any) -> Array:
    """Class labels (n,) from outputs Y (n, n_out), in Y's library and its index dtype (int64;
    int32 on JAX without x64): argmax for several outputs, Y[:, 0] >= 0.5 for one (a sigmoid's
    output). Also turns one-hot or 0/1 targets into labels, so the rule that scores predictions
    is the one that makes them."""
    if Y.shape[1] > 1:
        return xp.argmax(Y, axis=1)
    return xp.astype(Y[:, 0] >= 0.5, index_dtype(xp))


def correct_count(Y: Array, T: Array, xp: Any) -> Array:
    """Number of correct predictions as a 0-d device array: `predicted_labels` of the outputs
    against those of the targets (threshold 0.5 applies to the sigmoid's output; 0 on logits)."""
    hits = predicted_labels(Y, xp) == predicted_labels(T, xp)
    return xp.sum(xp.astype(hits, index_dtype(xp)))


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch, the last one short; stops stay in bounds (the array
    API leaves out-of-bounds slices unspecified)."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


class Tally:
    """Loss (weighted by batch size) and correct predictions summed over batches on the device;
    read on the host once, by `summary`."""

    def __init__(self, loss: Loss, classify: bool, xp: Any) -> None:
        self.loss, self.classify, self.xp = loss, classify, xp
        self.total_loss: Any = 0.0
        self.correct: Any = 0
        self.n = 0

    def add(
        self, Y: Array, T: Array, value: Array | None = None, weight: int | None = None
    ) -> None:
        """Score one batch's outputs Y against its targets T, whose loss is `value` when the
        caller has it (computed here otherwise), counted `weight` times (default: its rows;
        a process holding a shard of a batch of a summed loss counts the whole batch's)."""
        if value is None:
            value = self.loss.forward(Y, T)
        self.total_loss = self.total_loss + value * (Y.shape[0] if weight is None else weight)
        if self.classify:
            self.correct = self.correct + correct_count(Y, T, self.xp)
        self.n += Y.shape[0]

    def add_totals(self, total_loss: Array, correct: Array, n: int) -> None:
        """Count batches scored elsewhere (a compiled epoch's sums) as `add` would have."""
        self.total_loss = self.total_loss + total_loss
        if self.classify:
            self.correct = self.correct + correct
        self.n += n

    def summary(self, comm: Communicator | None = None) -> dict[str, float]:
        """{"loss": mean per sample, "accuracy": fraction correct (classification only)}, over
        every process of `comm` when given (each tallied its shards)."""
        totals = [float(to_numpy(self.total_loss)), float(to_numpy(self.correct)), self.n]
        if comm is not None:
            totals = comm.sum_scalars(totals)
        loss, correct, n = totals
        out = {"loss": loss / n}
        if self.classify:
            out["accuracy"] = correct / n
        return out


def evaluate(
    net: Sequential, X: Any, T: Any, loss: Loss | None = None, batch_size: int = 4096
) -> dict[str, float]:
    """{"loss": mean per-batch loss weighted by batch size, "accuracy": fraction correct (for
    0/1 targets)} on data X, T, in batches to bound memory."""
    X, T = prepare(net, X, T)
    return evaluate_prepared(
        net, X, T, loss or SSELoss(), batch_size, is_classification(T, net.backend)
    )


def evaluate_prepared(
    net: Sequential, X: Array, T: Array, loss: Loss, batch_size: int, classify: bool
) -> dict[str, float]:
    tally = Tally(loss, classify, net.backend.xp)
    with loss.checked_targets(T), in_mode(net, False):
        for start, stop in batch_bounds(X.shape[0], batch_size):
            tally.add(net.forward(X[start:stop, ...]), T[start:stop, ...])
    return tally.summary()


def predict(net: Sequential, X: Any, batch_size: int = 4096) -> Array:
    """The net's outputs for X (NumPy or the net's arrays), in batches; on the net's device."""
    X = to_net(net, X, "X")
    xp = net.backend.xp
    X = xp.astype(X, net.dtype)
    net.check_input(X)
    with in_mode(net, False):
        parts = [net.forward(X[a:b, ...]) for a, b in batch_bounds(X.shape[0], batch_size)]
    return xp.concat(parts, axis=0)
