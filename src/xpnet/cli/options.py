"""The options of `xpnet train` as one typed record, `TrainOptions`: each field carries its
default, its help and the value a run saved before the option existed meant, so that the
parser, a new run and `--resume` read one home for each option.

A run stores the record in its checkpoint and config.json (`to_dict`), and `--resume` reads it
back (`from_stored`); the keys and values stay those older versions of xpnet wrote and read."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..data import BUILTIN
from ..optim import OPTIMIZERS, Optimizer
from .errors import UsageError

__all__ = [
    "ABSENT",
    "REGRESSION_LOSS",
    "RESUMABLE",
    "TrainOptions",
    "command_line_fields",
    "given",
    "help_text",
]


REGRESSION_LOSS = "mse"  # --task regression's default loss

_REQUIRED = object()  # the `absent` of an option every version of `xpnet train` saved


def _option(
    default: Any,
    help: str,
    *,
    absent: Any = _REQUIRED,
    shown: str | None = None,
    resumable: bool = False,
) -> Any:
    """A command-line option: its default (None: decided from other options, as `shown`
    says), its help, what a run that lacks it meant (`absent`) and whether `--resume` may
    change it."""
    return dataclasses.field(
        metadata={
            "default": default,
            "help": help,
            "absent": absent,
            "shown": shown,
            "resumable": resumable,
        }
    )


def _recorded(default: Any, *, absent: Any) -> Any:
    """Not an option but a fact recorded with the run (`default`: a new run's before its data
    is loaded), with what a run that lacks it meant."""
    return dataclasses.field(metadata={"default": default, "absent": absent})


def _decay_defaults() -> str:
    """Each optimizer's default weight decay: the common one, then the exceptions."""
    common = Optimizer.default_weight_decay
    others = ", ".join(
        f"{name}: {cls.default_weight_decay:g}"
        for name, cls in OPTIMIZERS.items()
        if cls.default_weight_decay != common
    )
    return f"{common:g} ({others})" if others else f"{common:g}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """A run's options, defaults filled in, as the run stores them. The defaults train a
    sigmoid MLP on the digits to 96 % test accuracy in about a second on a laptop CPU (see
    the README for the measured run). An `absent` value reproduces the behaviour of the
    version that saved a run without the option, not today's default."""

    data: str = _option(
        "digits",
        f"{', '.join(BUILTIN)} (built in; mnist and fashion-mnist are downloaded on first use), "
        "an .npz (X, y), a .csv (label last) or an MNIST IDX directory",
    )
    hidden: tuple[int, ...] = _option((64,), "hidden layer widths")
    activation: str = _option("sigmoid", "the hidden layers' activation")
    loss: str = _option("softmax_ce", "softmax_ce has a linear output; the others a sigmoid one")
    optimizer: str = _option("adam", "the update rule")
    lr: float = _option(
        None,
        "learning rate",
        shown=", ".join(f"{c.suggested_lr} for {n}" for n, c in OPTIMIZERS.items()),
    )
    epochs: int = _option(40, "total epochs", resumable=True)
    batch_size: int = _option(32, "samples per step")
    backend: str = _option("auto", "the array library", resumable=True)
    device: int | str | None = _option(None, "e.g. cuda:1 or 1", shown="the first", resumable=True)
    dtype: str = _option("float32", "the parameters' and data's floating-point type")
    precision: str = _option(
        "32",
        "32, or bf16-mixed / 16-mixed: products in bfloat16 / float16 (loss-scaled) with "
        "float32 master weights (backends torch, cupy, jax)",
        absent="32",
    )
    seed: int = _option(0, "initial weights and shuffling")
    # runs saved before --val-fraction validated on the test split and trained on all of the
    # training part: val_fraction 0 keeps that training set
    val_fraction: float = _option(
        0.1,
        "fraction of the training part held out for validation (per-epoch val_ columns; 0: "
        "none; the test split is scored once, at the end)",
        absent=0.0,
    )
    # absent below: before the training toolkit (issue 9) there was no decay, no clipping, a
    # constant rate and no stopping
    weight_decay: float = _option(
        None,
        "L2 penalty on the weights (not the biases); decoupled with --optimizer adamw",
        shown=_decay_defaults(),
        absent=0.0,
    )
    clip_norm: float | None = _option(
        None,
        "scale each step's whole gradient down to this Euclidean norm",
        shown="none",
        absent=None,
    )
    lr_schedule: str = _option(
        "constant",
        "learning rate per epoch: constant, step (x0.1 every 10 epochs), cosine (to 0 at the "
        "last epoch), plateau (x0.1 after 5 epochs without a better validation loss)",
        absent="constant",
    )
    warmup_epochs: int = _option(
        0, "raise the learning rate linearly over the first N epochs", absent=0
    )
    min_lr_factor: float = _option(
        0.0,
        "the lowest rate of --lr-schedule plateau (and where cosine ends), as a fraction of --lr",
        absent=0.0,
    )
    early_stopping: int | None = _option(
        None,
        "stop after N epochs without a better validation loss and keep the best epoch's weights",
        shown="off",
        absent=None,
    )
    test_data: str | None = _option(
        None,
        "score this file (same kinds as --data) as the test set, and train (and validate) on "
        "all of --data",
        shown="a fixed 20 %% of --data",
        absent=None,
    )
    # absent below: before the cures for vanishing gradients (issue 22) every hidden layer was
    # Linear -> activation
    dropout: float = _option(
        0.0,
        "in training, zero each hidden unit with probability P (and scale the rest by "
        "1/(1-P)); evaluation keeps every unit",
        absent=0.0,
    )
    norm: str | None = _option(
        None,
        "normalize each hidden layer's pre-activations: layer (LayerNorm, per sample) or batch "
        "(BatchNorm, per batch; one process only)",
        shown="none",
        absent=None,
    )
    residual: bool = _option(
        False,
        "hidden layers of equal widths become residual blocks x + Linear(activation(x)), whose "
        "skip path carries the gradient down a deep net",
        shown="off",
        absent=False,
    )
    # absent: before --standardize the features trained as given
    standardize: bool = _option(
        False,
        "shift and scale each feature by the training split's mean and standard deviation "
        "(stored with the run; evaluate, predict and --resume apply the same numbers)",
        shown="off",
        absent=False,
    )
    # absent: before --task every run learned classes
    task: str = _option(
        "classification",
        "classification (y, or a .csv's last column, names classes) or regression (numbers to "
        "predict: a linear output, --loss mse by default, R² in the scores)",
        absent="classification",
    )
    # the SHA-256 of the data (None: built in), so that --resume can tell that it changed;
    # absent, nothing is checked
    data_sha256: str | None = _recorded(None, absent=None)
    # True: a data set's own test part (MNIST IDX t10k files) is the test set, as for every
    # new run; absent: IDX directories were pooled and re-split 80/20
    own_split: bool = _recorded(True, absent=False)
    test_data_sha256: str | None = _recorded(None, absent=None)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainOptions:
        """A new run's options: those given on the command line, the defaults for the rest
        (the optimizer's learning rate and weight decay among them), data paths made absolute
        (so that a resumed run finds its data from any directory)."""
        values = {f.name: f.metadata["default"] for f in dataclasses.fields(cls)}
        values.update(given(args))
        if values["task"] == "regression" and "loss" not in given(args):
            values["loss"] = REGRESSION_LOSS
        optimizer = OPTIMIZERS[values["optimizer"]]
        if values["lr"] is None:
            values["lr"] = optimizer.suggested_lr
        if values["weight_decay"] is None:
            values["weight_decay"] = optimizer.default_weight_decay
        for key in ("data", "test_data"):
            if values[key] is not None and values[key] not in BUILTIN:
                values[key] = str(Path(values[key]).expanduser().absolute())
        return cls(**{**values, "hidden": tuple(values["hidden"])})

    @classmethod
    def from_stored(cls, options: Any, run: Path) -> TrainOptions:
        """A saved run's options, those it predates with their old meaning (`ABSENT`);
        refuses options this version does not know (a newer xpnet's) and runs that lack one
        every version of `xpnet train` saved."""
        if not isinstance(options, dict):
            raise UsageError(f"{run} was not written by `xpnet train`, so it cannot resume")
        known = {f.name for f in dataclasses.fields(cls)}
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
        values = {**ABSENT, **options}
        return cls(**{**values, "hidden": tuple(values["hidden"])})

    def to_dict(self) -> dict[str, Any]:
        """The record as runs store it (JSON: the hidden widths as a list)."""
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}


def command_line_fields() -> Iterator[dataclasses.Field[Any]]:
    """The fields of `TrainOptions` that are options of the command line."""
    return (f for f in dataclasses.fields(TrainOptions) if "help" in f.metadata)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (a command that lacks one gives none)."""
    names = (f.name for f in command_line_fields())
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def help_text(name: str) -> str:
    """The help of option `name` for argparse, ending with its default."""
    field = next(f for f in command_line_fields() if f.name == name)
    default, shown = field.metadata["default"], field.metadata["shown"]
    if shown is None:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
    return f"{field.metadata['help']}; default: {shown}"


# what each option a run may lack meant (see TrainOptions)
ABSENT: Mapping[str, Any] = {
    f.name: f.metadata["absent"]
    for f in dataclasses.fields(TrainOptions)
    if f.metadata["absent"] is not _REQUIRED
}


# the options `--resume` may change
RESUMABLE = tuple(f.name for f in command_line_fields() if f.metadata["resumable"])
