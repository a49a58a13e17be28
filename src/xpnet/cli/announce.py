"""The line `xpnet train` says before it trains: the data and its splits, the net, the
training options that are not at rest, and where and how many processes train."""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..distributed import Communicator
from ..labels import describe_classes
from ..layers.sequence import parameter_count
from ..model import MLP
from ..sequential import Sequential
from .options import TrainOptions
from .plan import TrainingPlan

__all__ = ["header"]


def header(plan: TrainingPlan, group: Communicator, threads: int | None) -> str:
    """The one line that says what is about to be trained, where."""
    options, data, net, (fit_set, val_set, test_set) = (
        plan.options,
        plan.data,
        plan.net,
        plan.splits,
    )
    counts = f"{len(fit_set)} train / " + (
        "" if val_set is None else f"{len(val_set)} validation / "
    )
    return (
        f"{data.name}: {counts}{len(test_set)} test samples{_test_note(options, data, test_set)}"
        f"{_flattened(data)}{_classes_note(data, plan.classes)}"
        f"{' (features standardized by the training split)' if plan.scaling else ''}; "
        f"{net.describe()} {_kind(net)} ({parameter_count(net.layers):,} "
        f"parameters, seed {options.seed}), {options.loss}, {options.optimizer} lr "
        f"{options.lr}{_training_note(options)}, batch {options.batch_size}; "
        f"{net.backend.name} on {net.backend.device}, {net.dtype_name}"
        + (f" masters, precision {net.precision}" if net.precision.mixed else "")
        + (f"; resuming at epoch {plan.start}" if plan.start else "")
        + _group_note(group, threads)
    )


def _kind(net: Sequential) -> str:
    """What the net is: e.g. "relu MLP with layer norm, dropout 0.2, residual blocks" for an
    MLP, the class name of any other net."""
    if not isinstance(net, MLP):
        return type(net).__name__
    blocks = [f"{net.norm} norm"] if net.norm else []
    blocks += [f"dropout {net.dropout:g}"] if net.dropout else []
    blocks += ["residual blocks"] if net.residual else []
    return f"{net.hidden} MLP" + (f" with {', '.join(blocks)}" if blocks else "")


def _training_note(options: TrainOptions) -> str:
    """The note on the options beyond the learning rate that are not at rest."""
    notes = []
    if options.weight_decay:
        notes.append(f"weight decay {options.weight_decay:g}")
    if options.clip_norm is not None:
        notes.append(f"clip norm {options.clip_norm:g}")
    if options.lr_schedule != "constant":
        floor = f" (floor {options.min_lr_factor:g} x lr)" if options.min_lr_factor else ""
        notes.append(f"{options.lr_schedule} schedule{floor}")
    if options.warmup_epochs:
        notes.append(f"{options.warmup_epochs} warmup epochs")
    if options.early_stopping is not None:
        notes.append(f"early stopping after {options.early_stopping}")
    return "".join(f", {n}" for n in notes)


def _test_note(options: TrainOptions, data: Dataset, test_set: Dataset) -> str:
    """The note on where the test samples come from, when not from --data."""
    if options.test_data is not None:
        return f" (from {test_set.name})"
    if options.own_split and data.own_test is not None:
        return f" (its own test part, {len(test_set)} samples after the first {data.own_test})"
    return ""


def _group_note(group: Communicator, threads: int | None) -> str:
    """The note on data-parallel training."""
    if group.size == 1:
        return ""
    limit = f", {threads} thread{'s' * (threads != 1)} each" if threads else ""
    return f"; data-parallel on {group.size} processes ({type(group).__name__}{limit})"


def _classes_note(data: Dataset, classes: np.ndarray | None) -> str:
    """The note on labels other than 0..k-1, which are coded as their sorted order; on a
    regression's targets."""
    if classes is None:
        return f" (regression: {data.n_classes} target{'s' if data.n_classes > 1 else ''})"
    if classes.tolist() == list(range(data.n_classes)):
        return ""
    return f" ({data.n_classes} classes: {describe_classes(classes)})"


def _flattened(data: Dataset) -> str:
    """The note that X had more than 2 dimensions and was flattened."""
    shape = data.stored_shape
    if shape is None:
        return ""
    per_sample = " x ".join(map(str, shape[1:]))
    return (
        f" (X stored as {shape}: each {per_sample} sample flattened to {data.n_features} features)"
    )
