"""The training loop: minibatches shuffled from the seed, per-epoch loss and accuracy,
validation, callbacks and a tqdm progress bar. The data is checked and moved to the net's
device once, up front; a step then never copies to the host."""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import array_api_extra as xpx
from tqdm.auto import tqdm

from .backend import Backend, asarray, check_placement, to_numpy
from .losses import LOSSES, Loss, SSELoss
from .model import MLP
from .optim import OPTIMIZERS, SGD, Optimizer
from .rng import epoch_permutation

__all__ = [
    "Callback",
    "History",
    "batch_bounds",
    "correct_count",
    "evaluate",
    "fit",
    "is_classification",
    "predict",
    "predicted_labels",
    "prepare",
    "step",
]

Array = Any
Callback = Callable[[int, dict[str, float]], Any]


@dataclasses.dataclass
class History:
    """Per-epoch records: {"epoch", "loss", "accuracy"?, "val_loss"?, "val_accuracy"?,
    "seconds"}; `history["loss"]` gives one column as a list."""

    records: list[dict[str, float]] = dataclasses.field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        return list(self.records[0]) if self.records else []

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}


def prepare(net: MLP, X: Any, T: Any, what: str = "") -> tuple[Array, Array]:
    """Check X, T and move them to the net (NumPy or the net's own arrays are accepted; any
    other library raises rather than being copied): X cast to the net's dtype, 1-D integer
    labels one-hot encoded when the net has more than one output, a 1-D T reshaped to a column."""
    suffix = f" ({what})" if what else ""
    X = _on_net(net, X, f"X{suffix}")
    T = _on_net(net, T, f"T{suffix}")
    xp = net.backend.xp
    if X.ndim != 2 or X.shape[1] != net.sizes[0]:
        net.check_input(X, f"X{suffix}")
    if X.shape[0] == 0:
        raise ValueError(f"X{suffix} has no samples; give at least one row")
    n_out = net.sizes[-1]
    if T.ndim == 1 and n_out > 1:
        T = _one_hot(T, n_out, net)
    elif T.ndim == 1:
        T = xp.reshape(T, (-1, 1))
    if T.shape != (X.shape[0], n_out):
        raise ValueError(
            f"T{suffix} has shape {tuple(T.shape)} but the net needs ({X.shape[0]}, {n_out}): one "
            f"row per sample of X and one column per output (or 1-D integer class labels)"
        )
    for name, a in ((f"X{suffix}", X), (f"T{suffix}", T)):
        bad = int(to_numpy(xp.sum(xp.astype(~xp.isfinite(a), xp.int32))))
        if bad:
            raise ValueError(
                f"{name} contains {bad} NaN or infinite values; "
                "clean or impute the data before training"
            )
    return xp.astype(X, net.dtype), xp.astype(T, net.dtype)


def _on_net(net: MLP, a: Any, what: str) -> Array:
    """NumPy data (or nested lists) is moved to the net's device: an explicit, documented host
    -> device copy, floats cast to the net's dtype on the host, integers kept for label checks.
    The net's own arrays pass; any other library or device raises, naming both."""
    if type(a).__module__ == "numpy" or isinstance(a, list | tuple):
        if getattr(getattr(a, "dtype", None), "kind", "f") == "f":
            return asarray(a, like=net)
        return net.backend.from_host(a)
    check_placement(a, net.backend, what)
    return a


def _one_hot(labels: Array, n_classes: int, net: MLP) -> Array:
    xp = net.backend.xp
    if xp.isdtype(labels.dtype, "real floating"):
        whole = xp.all(labels == xp.round(labels))
        if not bool(to_numpy(whole)):
            raise ValueError("1-D targets must be integer class labels, got fractional values")
        labels = xp.astype(labels, xp.int64)
    if not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"1-D targets must be integer class labels, got dtype {labels.dtype}")
    lo, hi = int(to_numpy(xp.min(labels))), int(to_numpy(xp.max(labels)))
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"class labels must lie in 0..{n_classes - 1} for a net with {n_classes} outputs, "
            f"got {lo}..{hi}"
        )
    return xpx.one_hot(labels, n_classes, dtype=net.dtype, xp=xp)


def is_classification(T: Array, backend: Backend) -> bool:
    """Targets that are all 0 or 1 (one-hot rows or binary columns) mean classification."""
    xp = backend.xp
    return bool(to_numpy(xp.all((T == 0) | (T == 1))))


def predicted_labels(Y: Array, xp: Any) -> Array:
    """Class labels (n,) int64 from outputs Y (n, n_out), in Y's library: argmax for several
    outputs, Y[:, 0] >= 0.5 for one (a sigmoid's output). Also turns one-hot or 0/1 targets
    into labels, so the rule that scores predictions is the one that makes them."""
    if Y.shape[1] > 1:
        return xp.argmax(Y, axis=1)
    return xp.astype(Y[:, 0] >= 0.5, xp.int64)


def correct_count(Y: Array, T: Array, xp: Any) -> Array:
    """Number of correct predictions as a 0-d device array: `predicted_labels` of the outputs
    against those of the targets (threshold 0.5 applies to the sigmoid's output; 0 on logits)."""
    hits = predicted_labels(Y, xp) == predicted_labels(T, xp)
    return xp.sum(xp.astype(hits, xp.int64))


def evaluate(
    net: MLP, X: Any, T: Any, loss: Loss | None = None, batch_size: int = 4096
) -> dict[str, float]:
    """{"loss": mean per-batch loss weighted by batch size, "accuracy": fraction correct (for
    0/1 targets)} on data X, T, in batches to bound memory."""
    X, T = prepare(net, X, T)
    return _evaluate_prepared(
        net, X, T, loss or SSELoss(), batch_size, is_classification(T, net.backend)
    )


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch, the last one short; stops stay in bounds (the array
    API leaves out-of-bounds slices unspecified)."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


class _Tally:
    """Loss (weighted by batch size) and correct predictions summed over batches on the device;
    read on the host once, by `summary`."""

    def __init__(self, loss: Loss, classify: bool, xp: Any) -> None:
        self.loss, self.classify, self.xp = loss, classify, xp
        self.total_loss: Any = 0.0
        self.correct: Any = 0
        self.n = 0

    def add(self, Y: Array, T: Array, value: Array | None = None) -> None:
        """Score one batch's outputs Y against its targets T, whose loss is `value` when the
        caller has it (computed here otherwise)."""
        if value is None:
            value = self.loss.forward(Y, T)
        self.total_loss = self.total_loss + value * Y.shape[0]
        if self.classify:
            self.correct = self.correct + correct_count(Y, T, self.xp)
        self.n += Y.shape[0]

    def summary(self) -> dict[str, float]:
        """{"loss": mean per sample, "accuracy": fraction correct (classification only)}."""
        out = {"loss": float(to_numpy(self.total_loss)) / self.n}
        if self.classify:
            out["accuracy"] = float(to_numpy(self.correct)) / self.n
        return out


def _evaluate_prepared(
    net: MLP, X: Array, T: Array, loss: Loss, batch_size: int, classify: bool
) -> dict[str, float]:
    tally = _Tally(loss, classify, net.backend.xp)
    for start, stop in batch_bounds(X.shape[0], batch_size):
        tally.add(net.forward(X[start:stop, ...]), T[start:stop, ...])
    return tally.summary()


def predict(net: MLP, X: Any, batch_size: int = 4096) -> Array:
    """The net's outputs for X (NumPy or the net's arrays), in batches; on the net's device."""
    X = _on_net(net, X, "X")
    xp = net.backend.xp
    X = xp.astype(X, net.dtype)
    net.check_input(X)
    parts = [net.forward(X[a:b, ...]) for a, b in batch_bounds(X.shape[0], batch_size)]
    return xp.concat(parts, axis=0)


def step(
    net: MLP,
    X: Array,
    T: Array,
    loss: Loss,
    optimizer: Optimizer,
    *,
    allreduce: Callable[[Array], Array] | None = None,
) -> tuple[Array, Array]:
    """One training step on a batch of the net's own arrays: forward, loss, backward, then the
    optimizer's update (its gradient hooks first) from the net's flat gradient array, summed
    over processes by `allreduce` first when given (data-parallel training). Returns the
    outputs Y and the loss value (a 0-d device array: reading it is a host sync)."""
    Y = net.forward(X)
    value = loss.forward(Y, T)
    net.backward(loss.backward(), input_grad=False)
    buffer = net.parameter_buffer
    G = buffer.flat_gradients()
    if allreduce is not None:
        G = allreduce(G)
    buffer.store_flat_parameters(optimizer.update(buffer.flat_parameters(), G, buffer.layout))
    return Y, value


def _named(value: Any, table: dict[str, Any], kind: type, what: str) -> Any:
    """value itself if it is a `kind`, a default-made one for a name in `table`, None for None;
    otherwise a ValueError listing the names."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str) and value in table:
        return table[value]()
    raise ValueError(
        f"{what} must be an xpnet {kind.__name__} or one of {', '.join(map(repr, table))}, "
        f"got {value!r}"
    )


def fit(
    net: MLP,
    X: Any,
    T: Any,
    *,
    loss: Loss | str | None = None,
    optimizer: Optimizer | str | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    shuffle: bool = True,
    validation: tuple[Any, Any] | None = None,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    initial_epoch: int = 0,
    history: History | None = None,
) -> History:
    """Train `net` on X, T by minibatch backprop; return the History.

    X is (n, n_in); T is (n, n_out) or 1-D integer class labels (one-hot encoded). NumPy data
    is moved to the net's device once; arrays of the net's backend are used as they are; other
    libraries raise. The order of epoch e is a function of (seed, e), so training epochs
    `initial_epoch`..`epochs - 1` after a resume matches an uninterrupted run. Each callback
    gets (epoch, record) after every epoch; one that returns True stops training. The
    optimizer's schedule sets each epoch's learning rate (recorded as "lr")."""
    loss = _named(loss, LOSSES, Loss, "loss") if loss is not None else SSELoss()
    optimizer = _named(optimizer, OPTIMIZERS, Optimizer, "optimizer") or SGD(lr=0.5)
    if validation is not None and (
        not isinstance(validation, tuple | list) or len(validation) != 2
    ):
        raise ValueError(
            "validation must be a pair (X_val, T_val), got "
            + (
                f"{len(validation)} items"
                if isinstance(validation, tuple | list)
                else repr(validation)
            )
        )
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("epochs", epochs, 0),
        ("initial_epoch", initial_epoch, 0),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if epochs < initial_epoch:
        raise ValueError(
            f"epochs ({epochs}) is the epoch to train up to, so it cannot be below "
            f"initial_epoch ({initial_epoch})"
        )
    X, T = prepare(net, X, T, "training data")
    classify = is_classification(T, net.backend)
    if validation is not None:
        Xv, Tv = prepare(net, *validation, "validation data")
        classify_val = is_classification(Tv, net.backend)
    history = history if history is not None else History()
    xp = net.backend.xp
    n = X.shape[0]
    batches = batch_bounds(n, batch_size)
    bar = tqdm(
        total=(epochs - initial_epoch) * n,
        unit="sample",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for epoch in range(initial_epoch, epochs):
            started = time.perf_counter()
            if shuffle:
                order = net.backend.from_host(epoch_permutation(n, seed, epoch))
                Xe, Te = xp.take(X, order, axis=0), xp.take(T, order, axis=0)
            else:
                Xe, Te = X, T
            optimizer.begin_epoch(epoch)
            tally = _Tally(loss, classify, xp)
            for start, stop in batches:
                Tb = Te[start:stop, ...]
                Y, value = step(net, Xe[start:stop, ...], Tb, loss, optimizer)
                tally.add(Y, Tb, value)
                bar.update(stop - start)
            record: dict[str, float] = {"epoch": epoch + 1, **tally.summary()}
            if validation is not None:
                val = _evaluate_prepared(net, Xv, Tv, loss, 4096, classify_val)
                record.update({f"val_{k}": v for k, v in val.items()})
            record["lr"] = optimizer.current_lr
            record["seconds"] = time.perf_counter() - started
            optimizer.end_epoch(record)
            history.records.append(record)
            bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")},
                refresh=False,
            )
            if any([cb(epoch + 1, record) is True for cb in callbacks]):
                break
    finally:
        bar.close()
    return history
