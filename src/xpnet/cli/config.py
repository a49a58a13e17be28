"""Turning a run's options into data splits, a net, an optimizer and a memory estimate."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..backend import available_memory, get_backend, host_available_memory, rank_device
from ..backend import on_host as is_on_host
from ..data import BUILTIN, Dataset, load_dataset, load_targets, train_test_split
from ..layers.sequence import parameter_shapes
from ..model import MLP, mlp_layers
from ..optim import OPTIMIZERS, Optimizer
from ..optim.schedules import SCHEDULES, Cosine, Schedule
from . import parallel
from .errors import UsageError
from .options import TrainOptions

__all__ = [
    "OUTPUT_FOR_LOSS",
    "SPLIT_SEED",
    "TASKS",
    "TEST_FRACTION",
    "Splits",
    "build_net",
    "build_optimizer",
    "check_memory",
    "check_processes",
    "check_same_data",
    "check_task",
    "data_digest",
    "load_data",
    "net_sizes",
    "placement",
    "split",
    "test_split",
]


OUTPUT_FOR_LOSS = {"softmax_ce": "identity", "sse": "sigmoid", "mse": "sigmoid", "bce": "sigmoid"}


# what each task learns: the losses it takes
TASKS = {"classification": tuple(OUTPUT_FOR_LOSS), "regression": ("mse", "sse")}


FLOORED = ("plateau", "cosine")  # the schedules with a floor (min_factor)


TEST_FRACTION, SPLIT_SEED = 0.2, 0  # one fixed held-out split, whatever the model's seed


def build_optimizer(options: TrainOptions) -> Optimizer:
    """A fresh optimizer from the options: its rate, weight decay, clipping and schedule."""
    warmup, floor = options.warmup_epochs, options.min_lr_factor
    name = options.lr_schedule
    if floor and name not in FLOORED:
        raise UsageError(
            f"--min-lr-factor is the floor of --lr-schedule {' or '.join(FLOORED)}; "
            f"--lr-schedule {name} has none"
        )
    floored = {"min_factor": floor} if name in FLOORED else {}
    schedule: Schedule = (
        Cosine(epochs=max(1, options.epochs - warmup), warmup_epochs=warmup, **floored)
        if name == "cosine"
        else SCHEDULES[name](warmup_epochs=warmup, **floored)
    )
    return OPTIMIZERS[options.optimizer](
        lr=options.lr,
        weight_decay=options.weight_decay,
        clip_norm=options.clip_norm,
        schedule=schedule,
    )


def placement(options: TrainOptions) -> Any:
    """The device this process trains on: the options' device; in a data-parallel group on
    GPUs, GPU `local_rank` unless the options name one (the saved options keep the user's)."""
    if not parallel.where():
        return options.device
    backend = get_backend(options.backend or "auto", options.device)
    return rank_device(backend, options.device, parallel.local_rank())


def build_net(options: TrainOptions, data: Dataset, dtype: str) -> MLP:
    """A fresh MLP from the options, as wide as the data's features and classes (or targets:
    a regression's output is linear)."""
    return MLP(
        net_sizes(options, data),
        hidden=options.activation,
        output="identity" if options.task == "regression" else OUTPUT_FOR_LOSS[options.loss],
        backend=options.backend,
        device=placement(options),
        dtype=dtype,
        seed=options.seed,
        dropout=options.dropout,
        norm=options.norm,
        residual=options.residual,
    )


def check_task(options: TrainOptions) -> None:
    """Refuse a loss the task cannot learn with (softmax cross-entropy of a regression)."""
    losses = TASKS[options.task]
    if options.loss not in losses:
        raise UsageError(
            f"--loss {options.loss} does not fit --task {options.task}; use --loss "
            f"{' or '.join(losses)}"
        )


def load_data(
    spec: str, task: str, classes: np.ndarray | None = None, quiet: bool = False
) -> Dataset:
    """The data of a run of `task`: class labels coded by `classes` (see load_dataset), or a
    regression's numeric targets."""
    if task == "regression":
        return load_targets(spec)
    return load_dataset(spec, classes=classes, quiet=quiet)


def check_processes(options: TrainOptions, processes: int) -> None:
    """Refuse, before anything is trained or written, a net that data-parallel training cannot
    train (`fit` refuses it too, but only once the run directory exists): BatchNorm's batch
    statistics would differ from rank to rank."""
    if processes > 1 and options.norm == "batch":
        raise UsageError(
            f"--norm batch keeps batch statistics, which would differ from process to process "
            f"in data-parallel training ({processes} processes); use --norm layer, or train in "
            "one process"
        )


def net_sizes(options: TrainOptions, data: Dataset) -> list[int]:
    return [data.n_features, *options.hidden, data.n_classes]


class Splits(NamedTuple):
    """A run's data: what fit trains on, the validation set (None: none), the test set."""

    fit: Dataset
    validation: Dataset | None
    test: Dataset

    @property
    def largest_evaluation(self) -> int:
        """The most samples one evaluation scores: the validation or the test set."""
        return max(0 if self.validation is None else len(self.validation), len(self.test))


def split(data: Dataset, options: TrainOptions) -> Splits:
    """The run's splits of `data`, refusing early stopping and the plateau schedule without
    a validation set to watch."""
    train_set, test_set = test_split(data, options.data, options.test_data, options.own_split)
    fit_set, val_set = _validation_split(train_set, options.val_fraction)
    watchers = [
        option
        for option, on in (
            ("--early-stopping", options.early_stopping is not None),
            ("--lr-schedule plateau", options.lr_schedule == "plateau"),
        )
        if on
    ]
    if watchers and val_set is None:
        raise UsageError(
            f"{watchers[0]} watches the validation loss, and --val-fraction 0 leaves no "
            "validation set; give --val-fraction F (F > 0)"
        )
    return Splits(fit_set, val_set, test_set)


def _validation_split(train_set: Dataset, fraction: float) -> tuple[Dataset, Dataset | None]:
    """(what fit trains on, the validation set or None): `fraction` of the training part,
    stratified, with its own fixed seed; never the test split."""
    if fraction == 0:
        return train_set, None
    return train_test_split(train_set, fraction, SPLIT_SEED + 1)


def data_digest(data: Dataset, spec: str) -> str | None:
    """SHA-256 of the dataset as loaded (X as float64, the labels as the file has them: int64
    or text; shapes), recorded with a run so that --resume can tell that the data changed;
    None for the built-in datasets. Integer labels hash as the int64 labels did before they
    were coded, so the digests of older runs still match."""
    if spec in BUILTIN:
        return None
    h = hashlib.sha256()
    for a in (data.X, data.labels):
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_same_data(
    data: Dataset,
    spec: str,
    recorded: str | None,
    run: Path,
    action: str,
    fix: str = "start a new run on this data",
) -> None:
    """Refuse to go on with a run whose data file `spec` changed since the run started (its
    `recorded` digest differs; runs that did not record a digest are not checked): the run
    cannot `action` ("resume") on it; `fix` says what else to do."""
    if recorded is not None and recorded != data_digest(data, spec):
        raise UsageError(
            f"the data {spec} changed since the run in {run} started (its SHA-256 "
            f"differs), so the run cannot {action} on it; restore the original data, or {fix}"
        )


def test_split(
    data: Dataset, spec: str, test_data: str | None, own_split: bool
) -> tuple[Dataset, Dataset]:
    """(the training part, the test set) of `data` (loaded from `spec`): the fixed 80/20
    split of the data (or, with `own_split`, its own test part), or all of it and the
    `test_data` file, which must have the same features, its labels coded by the data's
    classes (it may lack some; a label the data lacks is refused)."""
    if test_data is None:
        k = data.own_test
        if own_split and k is not None:  # MNIST's own 60,000 / 10,000
            return (
                dataclasses.replace(data, X=data.X[:k], y=data.y[:k], own_test=None),
                dataclasses.replace(data, X=data.X[k:], y=data.y[k:], own_test=None),
            )
        return train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    test = load_data(test_data, "regression" if data.regression else "classification", data.classes)
    if test.n_features != data.n_features:
        raise UsageError(
            f"--test-data {test_data} has {test.n_features} features per sample but "
            f"--data {spec} has {data.n_features}; give test data of the same kind"
        )
    return data, test


def check_memory(
    sizes: Sequence[int],
    backend_name: str | None,
    device_spec: Any,
    n_samples: int,
    dtype: str,
    batch_size: int,
    n_eval: int = 0,
    slots: int = 0,
    fix: str = "use fewer or narrower --hidden layers",
) -> None:
    """Refuse, before allocating anything, a net whose training would not fit in the memory
    of its device: parameters, gradients and optimizer state (`slots` arrays per parameter),
    the training data on the device (and its shuffled copy), the activations of a batch and
    of an evaluation batch (of up to 4096 of `n_eval` samples), the host's float64 draw of
    the largest weight matrix and the checkpoint's host copies."""
    backend = get_backend(backend_name or "auto", device_spec)
    itemsize = 4 if dtype == "float32" else 8
    shapes = parameter_shapes(mlp_layers(sizes))
    params = sum(math.prod(shape) for shape in shapes.values())
    width = sum(sizes)
    batch = min(batch_size, n_samples)
    device = itemsize * (
        params * (2 + slots)
        + 2 * n_samples * (sizes[0] + sizes[-1])
        + 3 * batch * width
        + 2 * min(4096, n_eval) * width
    )
    largest = max(math.prod(shape) for shape in shapes.values())
    host = 8 * largest + 2 * itemsize * params * (1 + slots)
    on_host = is_on_host(backend)
    need = device + host if on_host else device
    free = available_memory(backend)
    if free is not None and need > free:
        raise UsageError(
            f"a {' -> '.join(map(str, sizes))} MLP needs about {_gib(need)} to train "
            f"({params:.3g} parameters in {dtype}, with gradients, optimizer state and "
            f"activations) but {backend} has {_gib(free)} free; {fix}"
        )
    free_host = host_available_memory()
    if not on_host and free_host is not None and host > free_host:
        raise UsageError(
            f"a {' -> '.join(map(str, sizes))} MLP needs about {_gib(host)} of host memory "
            f"to initialize and save, but the host has {_gib(free_host)} free; {fix}"
        )


def _gib(n: float) -> str:
    gib = n / 2**30
    return f"{gib:.3g} GiB" if gib < 1000 else f"{gib:,.0f} GiB"
