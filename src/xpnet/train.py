"""The training loop: minibatches shuffled from the seed, per-epoch loss and accuracy,
validation, callbacks and a tqdm progress bar. The data is checked and moved to the net's
device once, up front; a step then never copies to the host."""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from .compiled import compiled_epochs
from .distributed import Communicator
from .inputs import is_classification, prepare
from .losses import LOSSES, Loss, SSELoss
from .optim import OPTIMIZERS, SGD, Optimizer
from .precision import Precision
from .rng import epoch_permutation
from .scoring import Tally, batch_bounds, evaluate_prepared
from .sequential import Sequential, in_mode
from .stopping import EarlyStopping

__all__ = ["Callback", "History", "fit", "shard_bounds", "step"]

Array = Any
Callback = Callable[[int, dict[str, float]], Any]


@dataclasses.dataclass
class History:
    """Per-epoch records: {"epoch", "loss", "accuracy"?, "val_loss"?, "val_accuracy"?,
    "seconds"}; `history["loss"]` gives one column as a list."""

    records: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None  # the epoch whose parameters early stopping kept

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        return list(self.records[0]) if self.records else []

    @property
    def last(self) -> dict[str, float]:
        return self.records[-1] if self.records else {}


def step(
    net: Sequential,
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
    scaler = net.loss_scaler
    if scaler is None:
        net.backward(loss.backward(), input_grad=False)
        optimizer.step(net, reduce=allreduce)
    else:  # "16-mixed": backward from the scaled loss; the scaler unscales, checks, updates
        net.backward(scaler.scaled(loss.backward()), input_grad=False)
        scaler.step(net, optimizer, reduce=allreduce)
    return Y, value


def shard_bounds(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous piece of rows start..stop that process `rank` of `size` trains on: the
    pieces differ by at most one row, the first ones larger (possibly empty for a batch
    smaller than the group)."""
    q, r = divmod(stop - start, size)
    lo = start + rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def _shard_step(
    net: Sequential,
    X: Array,
    T: Array,
    bounds: tuple[int, int],
    loss: Loss,
    optimizer: Optimizer,
    group: Communicator,
    tally: Tally,
) -> None:
    """This process's part of the step on global batch `bounds` of X, T: its shard's gradient,
    weighted so that the sum over processes is the whole batch's gradient (by its share of
    the rows for a mean loss, as it is for a summed one), summed in one allreduce, then the
    same update on every process."""
    start, stop = bounds
    lo, hi = shard_bounds(start, stop, group.rank, group.size)
    summed = loss.reduction == "sum"
    weight = 1.0 if summed else (hi - lo) / (stop - start)

    def allreduce(G: Array) -> Array:
        return group.allreduce_sum(G if weight == 1.0 else G * weight)

    if hi == lo:  # no rows here: this process adds zeros to the sum and updates alike
        zeros = net.backend.xp.zeros_like(net.parameter_buffer.flat_parameters())
        if net.loss_scaler is None:
            optimizer.step(net, zeros, reduce=allreduce)
        else:
            net.loss_scaler.step(net, optimizer, zeros, reduce=allreduce)
        return
    Tb = T[lo:hi, ...]
    Y, value = step(net, X[lo:hi, ...], Tb, loss, optimizer, allreduce=allreduce)
    tally.add(Y, Tb, value, weight=stop - start if summed else None)


def _synchronize(net: Sequential, optimizer: Optimizer, group: Communicator) -> None:
    """Give every process rank 0's parameters and optimizer state."""
    buffer = net.parameter_buffer
    buffer.store_flat_parameters(group.broadcast(buffer.flat_parameters()))
    if optimizer.t:  # in one order on every process (a checkpoint's order is the loader's)
        state = optimizer.state_dict()
        optimizer.load_state_dict(
            {k: v if k == "t" else group.broadcast(v) for k, v in sorted(state.items())}
        )


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


def _stopper(early_stopping: EarlyStopping | int | None, validated: bool) -> EarlyStopping | None:
    """fit's early_stopping argument as an EarlyStopping (an int is its patience), checked
    against the data fit was given."""
    if early_stopping is None:
        return None
    if not isinstance(early_stopping, EarlyStopping):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping.monitor.startswith("val_") and not validated:
        raise ValueError(
            f"early stopping watches {early_stopping.monitor!r}: give validation=(X_val, T_val)"
        )
    return early_stopping


def fit(
    net: Sequential,
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
    comm: Communicator | None = None,
    early_stopping: EarlyStopping | int | None = None,
    compiled: bool = True,
    precision: str | Precision | None = None,
) -> History:
    """Train `net` on X, T by minibatch backprop; return the History.

    X is (n, n_in); T is (n, n_out) or 1-D integer class labels (one-hot encoded). NumPy data
    is moved to the net's device once; arrays of the net's backend are used as they are; other
    libraries raise. The net trains in training mode (its mode is restored after). The order
    of epoch e, and the random draws of its layers (dropout), are a function of (seed, e), so
    training epochs `initial_epoch`..`epochs - 1` after a resume matches an uninterrupted run.
    Each callback
    gets (epoch, record) after every epoch; one that returns True stops training. The
    optimizer's schedule sets each epoch's learning rate (recorded as "lr").

    With `comm` (a `distributed` communicator of several processes, each calling fit with the
    same data and arguments), training is data-parallel: every process starts from rank 0's
    parameters and optimizer state, shuffles alike, trains on its contiguous shard of each
    global batch and sums the weighted gradients in one allreduce per step, so the result is
    the one-process result to rounding; the records' loss and accuracy are the group's (their
    "seconds" the process's own) and only rank 0 shows progress.

    `early_stopping` (an `EarlyStopping`, or its patience as an int) ends training once the
    validation loss stops improving and leaves the net with its best epoch's parameters;
    `history.best_epoch` says which.

    With `compiled` (the default), an epoch's full batches run as one compiled computation
    where the net's library compiles one (JAX: one `jax.jit` per batch shape, traced in the
    first epoch) and every class in the net, loss and optimizer declares itself traceable;
    elsewhere, and with `compiled=False`, each step runs op by op. Both give the same numbers to
    rounding (the compiled step may fuse a multiply and an add).

    `precision` ("32", "bf16-mixed", "16-mixed"; None: the net's, "32" unless set) becomes the
    net's policy (`Sequential.set_precision`), which `predict` and `evaluate` follow too;
    "16-mixed" scales the loss dynamically and skips a step whose gradients overflow (the
    parameters, the optimizer's state and its step count stay as they were; compiled epochs
    decide that on the device) and adds the records' "loss_scale" and "skipped_steps"."""
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
    if precision is not None:
        net.set_precision(precision)
    X, T = prepare(net, X, T, "training data")
    classify = is_classification(T, net.backend)
    if validation is not None:
        Xv, Tv = prepare(net, *validation, "validation data")
        classify_val = is_classification(Tv, net.backend)
    history = history if history is not None else History()
    stopper = _stopper(early_stopping, validation is not None)
    group = comm if comm is not None and comm.size > 1 else None
    if group is not None and net.statistics():
        raise ValueError(
            f"the net keeps batch statistics ({', '.join(net.statistics())}), which would "
            "differ from process to process in data-parallel training; use LayerNorm instead "
            "of BatchNorm, or train in one process"
        )
    if group is not None:
        _synchronize(net, optimizer, group)
    xp = net.backend.xp
    n = X.shape[0]
    batches = batch_bounds(n, batch_size)
    runner = (
        None
        if not compiled or group is not None
        else compiled_epochs(net, loss, optimizer, classify)
    )
    bar = tqdm(
        total=(epochs - initial_epoch) * n,
        unit="sample",
        disable=not progress or (group is not None and group.rank != 0),
        dynamic_ncols=True,
    )
    with bar, loss.checked_targets(T), in_mode(net, True):
        for epoch in range(initial_epoch, epochs):
            started = time.perf_counter()
            net.reseed((seed, epoch))  # dropout's masks: a function of (seed, epoch), as the order
            if shuffle:
                order = net.backend.from_host(epoch_permutation(n, seed, epoch))
                Xe, Te = xp.take(X, order, axis=0), xp.take(T, order, axis=0)
            else:
                Xe, Te = X, T
            optimizer.begin_epoch(epoch)
            tally = Tally(loss, classify, xp)
            done = 0 if runner is None else runner.run(Xe, Te, batch_size, tally)
            bar.update(done)
            for start, stop in batches[done // batch_size :]:
                if group is None:
                    Tb = Te[start:stop, ...]
                    Y, value = step(net, Xe[start:stop, ...], Tb, loss, optimizer)
                    tally.add(Y, Tb, value)
                else:
                    _shard_step(net, Xe, Te, (start, stop), loss, optimizer, group, tally)
                bar.update(stop - start)
            record: dict[str, float] = {"epoch": epoch + 1, **tally.summary(group)}
            if net.loss_scaler is not None:
                record.update(net.loss_scaler.summary())
            if validation is not None:
                val = evaluate_prepared(net, Xv, Tv, loss, 4096, classify_val)
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
            stop = stopper is not None and stopper.update(record, net)
            if any([cb(epoch + 1, record) is True for cb in callbacks]) or stop:
                break
    if stopper is not None:
        stopper.restore(net)
        history.best_epoch = stopper.best_epoch
    return history
