"""The command line: option types and the parser of every command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..backend import BACKEND_NAMES, DTYPE_NAMES
from ..losses import LOSSES
from ..model import CLASSIC_HIDDEN, HIDDEN, NORMS
from ..optim import OPTIMIZERS
from ..optim.schedules import SCHEDULES
from ..precision import PRECISIONS
from .config import TASKS
from .errors import UsageError
from .evaluate import cmd_evaluate, cmd_predict
from .export import cmd_export
from .gradcheck import GRADCHECK_SAMPLES, cmd_gradcheck
from .info import cmd_info, version
from .options import help_text
from .train import cmd_train
from .vanishing import cmd_vanishing

__all__ = ["Parser", "build_parser"]


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so `main` prints one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to below 1, got {text!r}")
    return value


def _path(text: str) -> Path:
    """A path; an empty one (`--out ""`) would mean the working directory, and is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return Path(text)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 64,32, got {text!r}"
        )
    return values


def _name_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = text.split(",")
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))}: choose from {','.join(choices)}"
            )
        return names

    return parse


def _device(text: str) -> int | str:
    """ "1" -> 1 (the second GPU), anything else as written ("cuda:1", "cpu", "device1")."""
    return int(text) if text.isdigit() else text


def build_parser() -> Parser:
    parser = Parser(
        prog="xpnet",
        description="Train and inspect MLPs trained by explicit backpropagation, "
        "on NumPy, CuPy, PyTorch, JAX or array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=version("xpnet"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an MLP and save the run")
    train.set_defaults(run=cmd_train)
    _net_options(train)
    _option(train, "optimizer", choices=list(OPTIMIZERS))
    _option(train, "lr", type=_positive(float))
    _option(train, "epochs", type=_positive(int))
    _option(train, "batch_size", type=_positive(int))
    _option(train, "dtype", choices=DTYPE_NAMES)
    _option(train, "precision", choices=list(PRECISIONS))
    _option(train, "val_fraction", type=_fraction, metavar="F")
    _option(train, "weight_decay", type=_nonnegative_float, metavar="W")
    _option(train, "clip_norm", type=_positive(float), metavar="C")
    _option(train, "lr_schedule", choices=list(SCHEDULES))
    _option(train, "warmup_epochs", type=_nonnegative_int, metavar="N")
    _option(train, "min_lr_factor", type=_fraction, metavar="F")
    _option(train, "early_stopping", type=_positive(int), metavar="N")
    _option(train, "test_data", metavar="PATH")
    _option(train, "dropout", type=_fraction, metavar="P")
    _option(train, "norm", choices=[name for name in NORMS if name])
    _option(train, "residual", action="store_true", default=None)
    _option(train, "standardize", action="store_true", default=None)
    _option(train, "task", choices=list(TASKS))
    train.add_argument("--out", type=_path, help="run directory; default: a new one under runs/")
    _overwrite_option(train)
    train.add_argument(
        "--resume",
        type=_path,
        metavar="DIR",
        help="continue the run in DIR until it has --epochs epochs in total",
    )
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar and no per-epoch log lines"
    )
    train.add_argument(
        "--eager",
        action="store_true",
        help="run every step op by op: no CUDA-graphed (torch on a GPU) or jax.jit-compiled "
        "epochs, for debugging and comparison (the numbers agree to rounding)",
    )
    train.add_argument(
        "--tensorboard",
        type=_path,
        metavar="DIR",
        help="also log every epoch's scores, learning rate and layer gradient norms as "
        "TensorBoard event files in DIR (needs the tensorboard extra)",
    )
    train.add_argument(
        "--log-every",
        type=_positive(int),
        metavar="K",
        help="when stderr is no terminal (a log file, CI), one line every K epochs; default: 1",
    )
    train.add_argument(
        "--save-every",
        type=_nonnegative_float,
        default=30.0,
        metavar="SECONDS",
        help="write the checkpoint when this many seconds have passed since the last write "
        "(and always at the end and on Ctrl-C or SIGTERM; history.csv gets every epoch at "
        "once); 0: after every epoch; default: %(default)g",
    )

    ev = commands.add_parser("evaluate", help="loss and accuracy of a saved run")
    ev.set_defaults(run=cmd_evaluate)
    ev.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or .safetensors file")
    ev.add_argument("--data", help="evaluate on all of this data; default: the run's test split")
    _placement_options(ev)

    pr = commands.add_parser("predict", help="a saved net's outputs for new inputs")
    pr.set_defaults(run=cmd_predict)
    pr.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or .safetensors file")
    pr.add_argument(
        "inputs",
        type=Path,
        metavar="INPUT",
        help="an .npz file with an array X, or a .csv of features (a label column last is dropped)",
    )
    pr.add_argument(
        "-o",
        "--output",
        type=_path,
        required=True,
        metavar="OUT",
        help="an .npz (labels, probabilities, outputs) or a .csv (label and one probability "
        "per class, with a header)",
    )
    _overwrite_option(pr)
    _placement_options(pr)

    ex = commands.add_parser(
        "export", help="a saved run as an ONNX model: its probabilities and labels"
    )
    ex.set_defaults(run=cmd_export)
    ex.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or .safetensors file")
    ex.add_argument(
        "-o", "--output", type=_path, required=True, metavar="OUT", help="the model file (.onnx)"
    )
    _overwrite_option(ex)

    va = commands.add_parser(
        "vanishing",
        help="vanishing gradients and their cures: gradient norms by depth, accuracy reached",
    )
    va.set_defaults(run=cmd_vanishing)
    va.add_argument(
        "--depths", type=_int_list, default=list(range(1, 11)), help="default: 1,2,...,10"
    )
    va.add_argument(
        "--activations",
        type=_name_list(HIDDEN),
        default=list(CLASSIC_HIDDEN),
        help=f"any of {','.join(HIDDEN)}: a plain net of each; the first also with the cures; "
        f"default: {','.join(CLASSIC_HIDDEN)}",
    )
    va.add_argument(
        "--norm",
        choices=[*(name for name in NORMS if name), "none"],
        default="layer",
        help="the normalization the cures use; default: %(default)s",
    )
    va.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="whether the cures include residual blocks (alone and with --norm); default: on",
    )
    va.add_argument(
        "--epochs",
        type=_nonnegative_int,
        default=10,
        help="train every net at the deepest depth this long and report its held-out "
        "accuracy (0: no training); default: %(default)s",
    )
    va.add_argument(
        "--width", type=_positive(int), default=32, help="hidden units; default: %(default)s"
    )
    va.add_argument("--data", default="digits", help="default: %(default)s")
    va.add_argument("--batch-size", type=_positive(int), default=256, help="default: %(default)s")
    va.add_argument("--seed", type=_nonnegative_int, default=0)
    va.add_argument("--dtype", choices=DTYPE_NAMES, default="float64")
    va.add_argument("--out", type=_path, help="default: a new directory under runs/")
    _overwrite_option(va)
    _placement_options(va)

    info = commands.add_parser("info", help="versions, backends and devices")
    info.set_defaults(run=cmd_info)
    info.add_argument(
        "run_dir",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="a run directory or .safetensors file: its net layer by layer, with parameters",
    )

    gc = commands.add_parser("gradcheck", help="backward vs finite differences, per parameter")
    gc.set_defaults(run=cmd_gradcheck)
    _net_options(gc)
    gc.add_argument(
        "--samples",
        type=_positive(int),
        help=f"batch size (at most the data's); default: {GRADCHECK_SAMPLES}",
    )
    return parser


def _overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing regular files of the same names (by default an existing "
        "checkpoint, or a file this run did not write, is refused; links and other "
        "non-regular files are always refused)",
    )


def _option(parser: argparse.ArgumentParser, name: str, **parse: Any) -> None:
    """Add the `xpnet train` option `name` (a field of TrainOptions, whose help and default
    it shows), parsed as `parse` says. Its argparse default is None, so that `--resume` can
    tell which options were given; TrainOptions fills in the defaults."""
    parser.add_argument("--" + name.replace("_", "-"), help=help_text(name), **parse)


def _placement_options(parser: argparse.ArgumentParser) -> None:
    _option(parser, "backend", choices=["auto", *BACKEND_NAMES])
    _option(parser, "device", type=_device)


def _net_options(parser: argparse.ArgumentParser) -> None:
    """The options that define a net and its data."""
    _option(parser, "data")
    _option(parser, "hidden", type=_int_list)
    _option(parser, "activation", choices=HIDDEN)
    _option(parser, "loss", choices=list(LOSSES))
    _option(parser, "seed", type=_nonnegative_int)
    _placement_options(parser)
