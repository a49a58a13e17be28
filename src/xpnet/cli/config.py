"""A run's options: the defaults, what absent options meant, and turning options into data, a
net and a memory estimate; reading a saved run's options for `--resume`."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import available_memory, get_backend, host_available_memory, rank_device
from ..backend import on_host as is_on_host
from ..checkpoint import Checkpoint, read_checkpoint
from ..data import BUILTIN, load_dataset, train_test_split
from ..model import MLP
from ..optim import OPTIMIZERS, Optimizer
from ..optim.schedules import SCHEDULES, Cosine, Schedule
from . import parallel
from .errors import UsageError

__all__ = [
    "ABSENT",
    "DECAY",
    "DEFAULTS",
    "LEARNING_RATES",
    "OPTIMIZER_SLOTS",
    "OUTPUT_FOR_LOSS",
    "RECORDED",
    "RESUMABLE",
    "SPLIT_SEED",
    "TEST_FRACTION",
]


# The defaults of `xpnet train`: a sigmoid MLP on the digits, 96 % test accuracy in about a
# second on a laptop CPU (see the README for the measured run).
DEFAULTS: dict[str, Any] = {
    "data": "digits",
    "hidden": [64],
    "activation": "sigmoid",
    "loss": "softmax_ce",
    "optimizer": "adam",
    "lr": None,  # the optimizer's entry in LEARNING_RATES
    "epochs": 40,
    "batch_size": 32,
    "backend": "auto",
    "device": None,
    "dtype": "float32",
    "seed": 0,
    "val_fraction": 0.1,
    "weight_decay": None,  # the optimizer's: 0.01 for adamw, else 0 (L2 on the weights)
    "clip_norm": None,  # no clipping
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "early_stopping": None,  # patience in epochs; None: train all --epochs
    "test_data": None,  # a file to test on; None: the fixed 80/20 split of --data
}


# What an option absent from a saved run means: the value that reproduces the behaviour of the
# version that saved it (not today's default). Runs saved before --val-fraction validated on
# the test split and trained on all of the training part: val_fraction 0 keeps that training
# set. `data_sha256` is recorded with the run (not an option): absent, nothing is checked.
ABSENT: dict[str, Any] = {
    "val_fraction": 0.0,
    "data_sha256": None,
    # before the training toolkit (issue 9): no decay, no clipping, a constant rate, no stopping
    "weight_decay": 0.0,
    "clip_norm": None,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "early_stopping": None,
    "test_data": None,
    "test_data_sha256": None,
    "own_split": False,  # IDX directories were pooled and re-split 80/20
}


# stored in a run's options beside DEFAULTS' keys; own_split: a data set's own test part (MNIST
# IDX t10k files) is the test set (always so for new runs)
RECORDED = ("data_sha256", "test_data_sha256", "own_split")


LEARNING_RATES = {"sgd": 0.5, "momentum": 0.1, "adam": 0.01, "adamw": 0.01}
DECAY = {"adamw": 0.01}  # --weight-decay's default by optimizer (others: 0)


OUTPUT_FOR_LOSS = {"softmax_ce": "identity", "sse": "sigmoid", "mse": "sigmoid", "bce": "sigmoid"}


RESUMABLE = ("epochs", "backend", "device")  # what `--resume` may change


TEST_FRACTION, SPLIT_SEED = 0.2, 0  # one fixed held-out split, whatever the model's seed


OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state arrays per parameter


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The command's net and training options, defaults filled in, data paths made absolute
    (so that a resumed run finds its data from any directory)."""
    options = {k: _given(args, k, v) for k, v in DEFAULTS.items() if hasattr(args, k)}
    for key in ("data", "test_data"):
        if options.get(key) is not None and options[key] not in BUILTIN:
            options[key] = str(Path(options[key]).expanduser().absolute())
    return options


def _given(args: argparse.Namespace, key: str, default: Any) -> Any:
    value = getattr(args, key)
    return default if value is None else value


def _resume_options(args: argparse.Namespace) -> tuple[dict[str, Any], Checkpoint]:
    """The stored options of the run in `args.resume`, updated with --epochs/--backend/--device,
    and its checkpoint loaded on that backend."""
    fixed = [k for k in DEFAULTS if k not in RESUMABLE and getattr(args, k) is not None]
    if fixed or args.out is not None:
        name = "--" + (fixed[0] if fixed else "out").replace("_", "-")
        raise UsageError(
            f"{name} cannot change when resuming: --resume continues the run as it was set up "
            "(only --epochs, --backend, --device, --quiet and --log-every may be given)"
        )
    stored = read_checkpoint(args.resume)  # read once: its options say where to load it
    options = _stored_options(stored.metadata.get("options"), args.resume)
    if args.backend is not None and args.device is None:
        options["device"] = None  # the stored device belongs to the stored backend
    options.update({k: getattr(args, k) for k in RESUMABLE if getattr(args, k) is not None})
    ck = stored.load(options["backend"], _placement(options))
    if ck.optimizer is None:  # saved by xpnet.save without optimizer=: fit would start afresh
        raise UsageError(
            f"{args.resume} holds no optimizer state, so it cannot resume; train a new run"
        )
    if args.epochs is None or args.epochs <= ck.epoch:
        raise UsageError(
            f"the run in {args.resume} has {ck.epoch} epochs; give the total to reach with "
            f"--epochs N, N > {ck.epoch}"
        )
    return options, ck


def _stored_options(options: Any, run: Path) -> dict[str, Any]:
    """A saved run's options with those it predates filled in with their old meaning
    (`ABSENT`); refuses options this version does not know (a newer xpnet's) and runs that
    lack one every version of `xpnet train` saved."""
    if not isinstance(options, dict):
        raise UsageError(f"{run} was not written by `xpnet train`, so it cannot resume")
    known = set(DEFAULTS) | set(RECORDED)
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(
            f"{run} has options this xpnet does not know ({', '.join(unknown)}): it was "
            "written by a newer version; upgrade xpnet to resume it"
        )
    missing = sorted(known - set(options) - set(ABSENT))
    if missing:
        raise UsageError(
            f"{run} lacks the options {', '.join(missing)}, so it was not written by "
            "`xpnet train` and cannot resume"
        )
    return {**ABSENT, **options}


def _optimizer(options: dict[str, Any]) -> Optimizer:
    """A fresh optimizer from the options: its rate, weight decay, clipping and schedule."""
    warmup = options["warmup_epochs"]
    name = options["lr_schedule"]
    schedule: Schedule = (
        Cosine(epochs=max(1, options["epochs"] - warmup), warmup_epochs=warmup)
        if name == "cosine"
        else SCHEDULES[name](warmup_epochs=warmup)
    )
    return OPTIMIZERS[options["optimizer"]](
        lr=options["lr"],
        weight_decay=options["weight_decay"],
        clip_norm=options["clip_norm"],
        schedule=schedule,
    )


def _placement(options: dict[str, Any]) -> Any:
    """The device this process trains on: the options' device; in a data-parallel group on
    GPUs, GPU `local_rank` unless the options name one (the saved options keep the user's)."""
    if not parallel.where():
        return options["device"]
    backend = get_backend(options["backend"] or "auto", options["device"])
    return rank_device(backend, options["device"], parallel.local_rank())


def _build_net(options: dict[str, Any], data: Any, dtype: str) -> MLP:
    """A fresh MLP from the options, as wide as the data's features and classes."""
    return MLP(
        _sizes(options, data),
        hidden=options["activation"],
        output=OUTPUT_FOR_LOSS[options["loss"]],
        backend=options["backend"],
        device=_placement(options),
        dtype=dtype,
        seed=options["seed"],
    )


def _sizes(options: dict[str, Any], data: Any) -> list[int]:
    return [data.n_features, *options["hidden"], data.n_classes]


def _validation_split(train_set: Any, fraction: float) -> tuple[Any, Any]:
    """(what fit trains on, the validation set or None): `fraction` of the training part,
    stratified, with its own fixed seed; never the test split."""
    if fraction == 0:
        return train_set, None
    return train_test_split(train_set, fraction, SPLIT_SEED + 1)


def _data_digest(data: Any, spec: str) -> str | None:
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


def _check_same_data(
    data: Any, options: dict[str, Any], run: Path, action: str, key: str = "data"
) -> None:
    """Refuse to go on with a run whose data file (`key`: "data", or "test_data") changed
    since the run started (runs that did not record a digest are not checked)."""
    recorded = options.get(f"{key}_sha256")
    if recorded is not None and recorded != _data_digest(data, options[key]):
        raise UsageError(
            f"the data {options[key]} changed since the run in {run} started (its SHA-256 "
            f"differs), so it cannot {action} on it; restore the original data, or start a new "
            "run on this data"
        )


def _test_split(options: dict[str, Any], data: Any) -> tuple[Any, Any]:
    """(the training part, the test set): the fixed 80/20 split of the data, or all of it and
    the --test-data file, which must have the same features, its labels coded by the data's
    classes (it may lack some; a label the data lacks is refused)."""
    if options["test_data"] is None:
        k = data.own_test
        if options["own_split"] and k is not None:  # MNIST's own 60,000 / 10,000
            return (
                dataclasses.replace(data, X=data.X[:k], y=data.y[:k], own_test=None),
                dataclasses.replace(data, X=data.X[k:], y=data.y[k:], own_test=None),
            )
        return train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    test = load_dataset(options["test_data"], classes=data.classes)
    if test.n_features != data.n_features:
        raise UsageError(
            f"--test-data {options['test_data']} has {test.n_features} features per sample but "
            f"--data {options['data']} has {data.n_features}; give test data of the same kind"
        )
    return data, test


def _check_memory(
    sizes: Sequence[int],
    options: dict[str, Any],
    n_samples: int,
    dtype: str,
    n_eval: int = 0,
    slots: int = -1,
    fix: str = "use fewer or narrower --hidden layers",
) -> None:
    """Refuse, before allocating anything, a net whose training would not fit in the memory
    of its device: parameters, gradients and optimizer state, the training data on the device
    (and its shuffled copy), the activations of a batch and of an evaluation batch (of up to
    4096 of `n_eval` samples), the host's float64 draw of the largest weight matrix and the
    checkpoint's host copies."""
    backend = get_backend(options["backend"] or "auto", options["device"])
    itemsize = 4 if dtype == "float32" else 8
    slots = OPTIMIZER_SLOTS.get(options.get("optimizer", ""), 0) if slots < 0 else slots
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    width = sum(sizes)
    batch = min(options.get("batch_size") or n_samples, n_samples)
    device = itemsize * (
        params * (2 + slots)
        + 2 * n_samples * (sizes[0] + sizes[-1])
        + 3 * batch * width
        + 2 * min(4096, n_eval) * width
    )
    host = 8 * max(a * b for a, b in itertools.pairwise(sizes)) + 2 * itemsize * params * (
        1 + slots
    )
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
