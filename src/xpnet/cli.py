"""The `xpnet` command: train, evaluate, predict, vanishing, info and gradcheck.

Exit status: 0 done; 1 gradcheck found a wrong gradient, or xpnet hit a bug (shown with its
traceback); 2 a user mistake (a file that is missing or malformed, an option that does not
parse, an unusable backend or device, a corrupt checkpoint, a net too big for the memory),
said in one line on stderr; 3 training diverged (a non-finite loss), said in one line; 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import importlib.metadata
import io
import itertools
import json
import math
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots
from .backend import (
    BACKEND_NAMES,
    DTYPE_NAMES,
    available_backends,
    available_memory,
    get_backend,
    host_available_memory,
    to_numpy,
)
from .checkpoint import FILENAME, Checkpoint, load_checkpoint, read_checkpoint, save
from .data import BUILTIN, load_dataset, load_inputs, one_hot, train_test_split
from .diagnostics import vanishing_study
from .files import write_atomic
from .gradcheck import gradcheck
from .inputs import prepare
from .losses import LOSSES
from .model import HIDDEN, MLP
from .optim import OPTIMIZERS
from .scoring import evaluate, predict, predicted_labels
from .train import History, fit

__all__ = [
    "DEFAULTS",
    "Parser",
    "UsageError",
    "build_parser",
    "cmd_evaluate",
    "cmd_gradcheck",
    "cmd_info",
    "cmd_predict",
    "cmd_train",
    "cmd_vanishing",
    "main",
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
}
# What an option absent from a saved run means: the value that reproduces the behaviour of the
# version that saved it (not today's default). Runs saved before --val-fraction validated on
# the test split and trained on all of the training part: val_fraction 0 keeps that training
# set. `data_sha256` is recorded with the run (not an option): absent, nothing is checked.
ABSENT: dict[str, Any] = {"val_fraction": 0.0, "data_sha256": None}
RECORDED = ("data_sha256",)  # stored in a run's options beside DEFAULTS' keys
LEARNING_RATES = {"sgd": 0.5, "momentum": 0.1, "adam": 0.01}
OUTPUT_FOR_LOSS = {"softmax_ce": "identity", "sse": "sigmoid", "mse": "sigmoid", "bce": "sigmoid"}
RESUMABLE = ("epochs", "backend", "device")  # what `--resume` may change
TEST_FRACTION, SPLIT_SEED = 0.2, 0  # one fixed held-out split, whatever the model's seed
GRADCHECK_TOLERANCE = 1e-6  # the bound where float64 rounding allows it (see _tolerances)
ROUNDING_MARGIN = 10  # measured errors of a correct backward sit 3-5x below the rounding floor
GRADCHECK_EPS = 1e-6  # xpnet.gradcheck's default step
COMMANDS = ("train", "evaluate", "predict", "vanishing", "info", "gradcheck")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2}  # state arrays per parameter


class UsageError(Exception):
    """A command line that does not make sense; the message says what to type instead."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so `main` prints one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


# -- option types -----------------------------------------------------------------------------
def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to below 1, got {text!r}")
    return value


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


# -- the parser -------------------------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(
        prog="xpnet",
        description="Train and inspect MLPs trained by explicit backpropagation, "
        "on NumPy, CuPy, PyTorch or array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=_version("xpnet"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train an MLP and save the run")
    train.set_defaults(run=cmd_train)
    _net_options(train)
    train.add_argument("--optimizer", choices=list(OPTIMIZERS), help="default: adam")
    train.add_argument(
        "--lr",
        type=_positive(float),
        help="learning rate; default: "
        + ", ".join(f"{lr} for {name}" for name, lr in LEARNING_RATES.items()),
    )
    train.add_argument("--epochs", type=_positive(int), help="total epochs; default: 40")
    train.add_argument("--batch-size", type=_positive(int), help="default: 32")
    train.add_argument("--dtype", choices=DTYPE_NAMES, help="default: float32")
    train.add_argument(
        "--val-fraction",
        type=_fraction,
        metavar="F",
        help="fraction of the training part held out for validation (per-epoch val_ columns; "
        "0: none); default: 0.1. The test split is scored once, at the end",
    )
    train.add_argument("--out", type=Path, help="run directory; default: a new one under runs/")
    train.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR until it has --epochs epochs in total",
    )

    ev = commands.add_parser("evaluate", help="loss and accuracy of a saved run")
    ev.set_defaults(run=cmd_evaluate)
    ev.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or .safetensors file")
    ev.add_argument("--data", help="evaluate on all of this data; default: the run's test split")
    _placement_options(ev)

    pr = commands.add_parser("predict", help="a saved net's outputs for new inputs")
    pr.set_defaults(run=cmd_predict)
    pr.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or .safetensors file")
    pr.add_argument("inputs", type=Path, metavar="INPUT.npz", help=".npz file with an array X")
    pr.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.npz")
    _placement_options(pr)

    va = commands.add_parser("vanishing", help="per-layer gradient norms of fresh nets by depth")
    va.set_defaults(run=cmd_vanishing)
    va.add_argument("--depths", type=_int_list, default=list(range(1, 11)), help="default: 1..10")
    va.add_argument(
        "--activations",
        type=_name_list(HIDDEN),
        default=list(HIDDEN),
        help=f"default: {','.join(HIDDEN)}",
    )
    va.add_argument("--width", type=_positive(int), default=32, help="hidden units; default: 32")
    va.add_argument("--data", default="digits", help="default: digits")
    va.add_argument("--batch-size", type=_positive(int), default=256, help="default: 256")
    va.add_argument("--seed", type=_nonnegative_int, default=0)
    va.add_argument("--dtype", choices=DTYPE_NAMES, default="float64")
    va.add_argument("--out", type=Path, help="default: a new directory under runs/")
    _placement_options(va)

    info = commands.add_parser("info", help="versions, backends and devices")
    info.set_defaults(run=cmd_info)

    gc = commands.add_parser("gradcheck", help="backward vs finite differences, per parameter")
    gc.set_defaults(run=cmd_gradcheck)
    _net_options(gc)
    gc.add_argument("--samples", type=_positive(int), default=8, help="batch size; default: 8")
    return parser


def _placement_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["auto", *BACKEND_NAMES], help="default: auto")
    parser.add_argument("--device", type=_device, help="e.g. cuda:1 or 1; default: the first")


def _net_options(parser: argparse.ArgumentParser) -> None:
    """The options that define a net and its data (defaults applied later, so `--resume` can
    tell which ones were given)."""
    parser.add_argument(
        "--data",
        help=f"{' or '.join(BUILTIN)}, an .npz (X, y), a .csv (label last) or an MNIST IDX "
        "directory; default: digits",
    )
    parser.add_argument("--hidden", type=_int_list, help="hidden layer widths; default: 64")
    parser.add_argument("--activation", choices=HIDDEN, help="default: sigmoid")
    parser.add_argument(
        "--loss",
        choices=list(LOSSES),
        help="default: softmax_ce (linear output); the others use a sigmoid output",
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, help="initial weights and shuffling; default: 0"
    )
    _placement_options(parser)


# -- main -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is 0 done, 1 gradcheck failed, 2 a user mistake (one
    line on stderr), 3 training diverged, 130 interrupted. Bugs raise, with their traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return args.run(args) or EXIT_OK
    except UsageError as err:
        return _fail(_command(argv), err)
    except (ValueError, OSError) as err:  # DataError, BackendError, CheckpointError, files
        return _fail(_command(argv), err)
    except MemoryError:  # what the up-front estimate did not foresee
        return _fail(
            _command(argv),
            UsageError("out of memory; use a smaller net (--hidden), batch or dataset"),
        )
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _command(argv: Sequence[str]) -> str:
    """ "xpnet train" etc. for error messages; plain "xpnet" before a known command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return f"xpnet {first}" if first in COMMANDS else "xpnet"


def _fail(command: str, err: BaseException, status: int = EXIT_USAGE) -> int:
    if isinstance(err, OSError) and err.strerror:
        message = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    else:
        message = str(err)
    print(f"{command}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


# -- train ------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        options, ck = _resume_options(args)
        out = args.resume
    else:
        options, ck = _options(args), None
        options["lr"] = options["lr"] or LEARNING_RATES[options["optimizer"]]
        out = args.out
        if out is not None and (out / FILENAME).exists():
            raise UsageError(
                f"{out} already holds a run; continue it with --resume {out} --epochs N, "
                "or choose another --out"
            )
    data = load_dataset(options["data"])
    if ck is None:
        options["data_sha256"] = _data_digest(data, options["data"])
    else:
        _check_same_data(data, options, args.resume, "resume")
    train_set, test_set = train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    fit_set, val_set = _validation_split(train_set, options["val_fraction"])
    if ck is None:
        n_eval = max(0 if val_set is None else len(val_set), len(test_set))
        _check_memory(_sizes(options, data), options, len(fit_set), options["dtype"], n_eval)
        net = _build_net(options, data, options["dtype"])
        optimizer = OPTIMIZERS[options["optimizer"]](lr=options["lr"])
        history, start = History(), 0
    else:
        net, history, start = ck.net, History(ck.history), ck.epoch
        assert ck.optimizer is not None  # _resume_options refuses a run without one
        optimizer = ck.optimizer
    counts = f"{len(fit_set)} train / " + (
        "" if val_set is None else f"{len(val_set)} validation / "
    )
    print(
        f"{data.name}: {counts}{len(test_set)} test samples{_flattened(data)}; "
        f"{' -> '.join(map(str, net.sizes))} {net.hidden} MLP, {options['loss']}, "
        f"{options['optimizer']} lr {options['lr']}, batch {options['batch_size']}; "
        f"{net.backend.name} on {net.backend.device}, {net.dtype_name}"
        + (f"; resuming at epoch {start}" if start else "")
    )
    out = out or _new_run_dir(Path(options["data"]).stem)  # made once the setup is known good
    out.mkdir(parents=True, exist_ok=True)
    diverged: list[int] = []

    def guard(epoch: int, record: dict[str, float]) -> bool:
        """Stop at the first epoch whose loss (or any other number) is not finite."""
        if not all(math.isfinite(v) for v in record.values()):
            diverged.append(epoch)
        return bool(diverged)

    def checkpoint(epoch: int, record: dict[str, float]) -> None:
        """After every good epoch, so an interrupted run can be resumed (a diverged epoch is
        not saved: the last checkpoint stays the last finite net)."""
        if diverged:
            return
        save(
            net,
            out,
            {"options": options},
            optimizer=optimizer,
            epoch=epoch,
            seed=options["seed"],
            history=history.records,
        )

    loss = LOSSES[options["loss"]]()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a NaN: guarded
        fit(
            net,
            fit_set.X,
            fit_set.y,
            loss=loss,
            optimizer=optimizer,
            epochs=options["epochs"],
            batch_size=options["batch_size"],
            seed=options["seed"],
            validation=None if val_set is None else (val_set.X, val_set.y),
            progress=sys.stderr.isatty(),
            callbacks=[guard, checkpoint],  # in this order: guard first
            initial_epoch=start,
            history=history,
        )
        test = None if diverged else evaluate(net, test_set.X, test_set.y, loss=loss)
    n_val = 0 if val_set is None else len(val_set)
    metrics = _metrics(history, test, net, options, len(fit_set), n_val, len(test_set))
    _write_json(out / "metrics.json", metrics)
    _write_history(out / "history.csv", history)
    if diverged:
        return _diverged(diverged[0], history, options, out)
    drawn = _draw(plots.plot_curves, history.records, out / "curves.png")
    print(
        f"test accuracy {_percent(metrics['test_accuracy'])} (loss {metrics['test_loss']:.4g}) "
        f"after {metrics['epochs']} epochs, {metrics['seconds']:.1f} s of training, "
        f"{metrics['backend']} on {metrics['device']}"
    )
    files = [FILENAME, "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
    print(f"saved in {out}: {', '.join(files)}")
    return EXIT_OK


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f} %"


def _diverged(epoch: int, history: History, options: dict[str, Any], out: Path) -> int:
    """The one line for a run whose loss stopped being finite, and exit status 3."""
    record = history.records[-1]
    bad = ", ".join(f"{k} {v}" for k, v in record.items() if not math.isfinite(v))
    saved = (
        f"the checkpoint in {out} holds epoch {epoch - 1}"
        if epoch > 1
        else "no checkpoint was saved"
    )
    lr = options["lr"]
    print(
        f"xpnet train: error: training diverged in epoch {epoch} ({bad}): the learning rate "
        f"{lr:g} is likely too high for {options['optimizer']}; try a lower --lr such as "
        f"{lr / 10:g} ({saved}; metrics.json and history.csv say how it went)",
        file=sys.stderr,
    )
    return EXIT_DIVERGED


def _flattened(data: Any) -> str:
    """The header's note that X had more than 2 dimensions and was flattened."""
    shape = data.stored_shape
    if shape is None:
        return ""
    per_sample = " x ".join(map(str, shape[1:]))
    return (
        f" (X stored as {shape}: each {per_sample} sample flattened to {data.n_features} features)"
    )


def _validation_split(train_set: Any, fraction: float) -> tuple[Any, Any]:
    """(what fit trains on, the validation set or None): `fraction` of the training part,
    stratified, with its own fixed seed; never the test split."""
    if fraction == 0:
        return train_set, None
    return train_test_split(train_set, fraction, SPLIT_SEED + 1)


def _data_digest(data: Any, spec: str) -> str | None:
    """SHA-256 of the dataset as loaded (X as float64, y as int64, shapes), recorded with a
    run so that --resume can tell that the data changed; None for the built-in datasets."""
    if spec in BUILTIN:
        return None
    h = hashlib.sha256()
    for a in (data.X, data.y):
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _check_same_data(data: Any, options: dict[str, Any], run: Path, action: str) -> None:
    """Refuse to go on with a run whose data file changed since the run started (runs that did
    not record a digest are not checked)."""
    recorded = options.get("data_sha256")
    if recorded is not None and recorded != _data_digest(data, options["data"]):
        raise UsageError(
            f"the data {options['data']} changed since the run in {run} started (its SHA-256 "
            f"differs), so it cannot {action} on it; restore the original data, or start a new "
            "run on this data"
        )


def _sizes(options: dict[str, Any], data: Any) -> list[int]:
    return [data.n_features, *options["hidden"], data.n_classes]


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
    on_host = backend.name in ("numpy", "array_api_strict") or str(backend.device) == "cpu"
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


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The command's net and training options, defaults filled in, data paths made absolute
    (so that a resumed run finds its data from any directory)."""
    options = {k: _given(args, k, v) for k, v in DEFAULTS.items() if hasattr(args, k)}
    if options["data"] not in BUILTIN:
        options["data"] = str(Path(options["data"]).expanduser().absolute())
    return options


def _build_net(options: dict[str, Any], data: Any, dtype: str) -> MLP:
    """A fresh MLP from the options, as wide as the data's features and classes."""
    return MLP(
        _sizes(options, data),
        hidden=options["activation"],
        output=OUTPUT_FOR_LOSS[options["loss"]],
        backend=options["backend"],
        device=options["device"],
        dtype=dtype,
        seed=options["seed"],
    )


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
            "(only --epochs, --backend and --device may be given)"
        )
    stored = read_checkpoint(args.resume)  # read once: its options say where to load it
    options = _stored_options(stored.metadata.get("options"), args.resume)
    if args.backend is not None and args.device is None:
        options["device"] = None  # the stored device belongs to the stored backend
    options.update({k: getattr(args, k) for k in RESUMABLE if getattr(args, k) is not None})
    ck = stored.load(options["backend"], options["device"])
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


def _new_run_dir(name: str, root: Path = Path("runs")) -> Path:
    """A new directory root/<date>-<time>-<name>, or ...-<name>-2, -3, ... if taken: made here
    with mkdir, which fails when another run made the same one first, so parallel runs never
    share (and overwrite) a directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    path, n = root / f"{stamp}-{name}", 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = root / f"{stamp}-{name}-{n}"


def _metrics(
    history: History,
    test: dict[str, float] | None,
    net: MLP,
    options: dict[str, Any],
    n_train: int,
    n_val: int,
    n_test: int,
) -> dict[str, Any]:
    """What metrics.json holds: the test split's scores (computed once, after training; None
    when training diverged), the last epoch's training and validation scores, and the run."""
    last = history.last
    seconds = sum(history["seconds"])
    return {
        "test_accuracy": (test or {}).get("accuracy"),
        "test_loss": (test or {}).get("loss"),
        "train_accuracy": last.get("accuracy"),
        "train_loss": last.get("loss"),
        "val_accuracy": last.get("val_accuracy"),
        "val_loss": last.get("val_loss"),
        "epochs": len(history),
        "diverged": test is None,
        "backend": net.backend.name,
        "device": str(net.backend.device),
        "dtype": net.dtype_name,
        "seconds": seconds,
        "samples_per_second": n_train * len(history) / seconds if seconds else None,
        "data": options["data"],
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "val_fraction": options["val_fraction"],
    }


def _finite(obj: Any) -> Any:
    """obj with every NaN or infinite float replaced by None, so JSON stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    """Strict JSON (NaN and infinities written as null), atomically."""
    write_atomic(path, (json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n").encode())


def _write_history(path: Path, history: History) -> None:
    """One row per epoch, with every column any epoch has (a resumed run saved before
    --val-fraction has val_ columns only in its first epochs, where they were the test
    split's); a value an epoch lacks is left empty."""
    columns = list(dict.fromkeys(k for r in history.records for k in r))
    if "seconds" in columns:  # last, as fit records it
        columns = [*(c for c in columns if c != "seconds"), "seconds"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, restval="")
    writer.writeheader()
    writer.writerows(history.records)
    write_atomic(path, text.getvalue().encode())


def _draw(plot: Callable[..., None], data: Any, path: Path) -> bool:
    """Draw with matplotlib if it is installed; otherwise say in one line how to get it."""
    try:
        plot(data, path)
    except ImportError:
        print(f"matplotlib is not installed, so no {path.name}: {plots.INSTALL_HINT}")
        return False
    return True


# -- evaluate and predict ---------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> None:
    ck = load_checkpoint(args.run_dir, args.backend, args.device)
    options = ck.metadata.get("options")
    options = options if isinstance(options, dict) else {}  # a checkpoint saved by xpnet.save
    if args.data is not None:
        data, where = load_dataset(args.data), "all samples"
    elif isinstance(options.get("data"), str):
        whole = load_dataset(options["data"])
        _check_same_data(whole, options, args.run_dir, "be evaluated (give --data to use it)")
        data, where = train_test_split(whole, TEST_FRACTION, SPLIT_SEED)[1], "the test split"
    else:
        raise UsageError(f"{args.run_dir} does not say what data it was trained on; give --data")
    name = options.get("loss")
    loss = LOSSES[name if name in LOSSES else _default_loss(ck.net)]()
    result = evaluate(ck.net, data.X, data.y, loss=loss)
    accuracy = f"accuracy {100 * result['accuracy']:.2f} %, " if "accuracy" in result else ""
    print(
        f"{data.name} ({where}, {len(data)}): {accuracy}loss {result['loss']:.4g} "
        f"({type(loss).__name__}), epoch {ck.epoch}, {ck.net.backend.name} on "
        f"{ck.net.backend.device}"
    )


def _default_loss(net: MLP) -> str:
    return "softmax_ce" if net.output == "identity" else "sse"


def cmd_predict(args: argparse.Namespace) -> None:
    net = load_checkpoint(args.run_dir, args.backend, args.device).net
    X = load_inputs(args.inputs)
    Y = predict(net, X)
    labels = to_numpy(predicted_labels(Y, net.backend.xp))
    buffer = io.BytesIO()
    np.savez(buffer, y=labels, outputs=to_numpy(Y))
    write_atomic(args.output, buffer.getvalue())
    print(f"{len(X)} predictions -> {args.output} (y: class labels, outputs: the net's outputs)")


# -- vanishing --------------------------------------------------------------------------------
def cmd_vanishing(args: argparse.Namespace) -> None:
    data = load_dataset(args.data)
    rows = np.random.default_rng(args.seed).permutation(len(data))[: args.batch_size]
    X, T = data.X[rows], one_hot(data.y[rows], data.n_classes)
    deepest = [data.n_features, *[args.width] * (max(args.depths) - 1), data.n_classes]
    place = {"backend": args.backend, "device": args.device, "batch_size": len(X)}
    _check_memory(deepest, place, len(X), args.dtype, slots=0, fix="use a smaller --width")
    results = vanishing_study(
        args.depths,
        args.activations,
        X,
        T,
        width=args.width,
        backend=args.backend or "auto",
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
    )
    print(
        f"norm of layer 1's weight gradient, fresh nets ({args.width} units wide), {len(X)} "
        f"samples of {data.name}:"
    )
    print(_table(results, args.depths))
    out = args.out or _new_run_dir("vanishing")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "vanishing.json", results)
    drawn = _draw(plots.plot_vanishing, results, out / "vanishing.png")
    print(f"saved in {out}: vanishing.json" + (", vanishing.png" if drawn else ""))


def _table(results: dict[str, dict[str, list[float]]], depths: Sequence[int]) -> str:
    """Depth by activation, layer 1's norm, and a last row with deepest / shallowest."""
    names = list(results)
    lo, hi = str(depths[0]), str(depths[-1])
    rows = [("depth", names)]
    rows += [(str(d), [f"{results[n][str(d)][0]:.3g}" for n in names]) for d in depths]
    rows.append((f"ratio {hi}/{lo}", [_ratio(results[n][hi][0], results[n][lo][0]) for n in names]))
    return "\n".join(f"{label:<11}" + "".join(f"{c:>11}" for c in cells) for label, cells in rows)


def _ratio(a: float, b: float) -> str:
    """a / b for the table; "n/a" where b is 0 (a one-sample batch can have a zero gradient)."""
    return f"{a / b:.3g}" if b else "n/a"


# -- info and gradcheck -----------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> None:
    print(f"xpnet {_version('xpnet')}, Python {platform.python_version()} ({sys.platform})")
    packages = ["numpy", "array-api-compat", "array-api-extra", "array-api-strict", "torch"]
    packages += ["cupy-cuda12x", "cupy-cuda13x", "tqdm", "safetensors", "matplotlib"]
    print("packages: " + ", ".join(f"{p} {_version(p)}" for p in packages))
    print("backends:")
    for name, status in available_backends().items():
        print(f"  {name:<17}{status}")
    devices = _gpus()
    print("GPUs:" + ("" if devices else " none"))
    for line in devices:
        print(f"  {line}")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gpus() -> list[str]:
    """One line per CUDA device cupy or torch can see: index, name, memory."""
    status = available_backends()
    if status["cupy"] == "ok":
        import cupy

        props = [
            cupy.cuda.runtime.getDeviceProperties(i)
            for i in range(cupy.cuda.runtime.getDeviceCount())
        ]
        return [
            f"cuda:{i} {p['name'].decode()} {p['totalGlobalMem'] / 2**30:.1f} GiB"
            for i, p in enumerate(props)
        ]
    if status["torch"] == "ok":
        import torch

        if torch.cuda.is_available():
            return [
                f"cuda:{i} {torch.cuda.get_device_name(i)} "
                f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.1f} GiB"
                for i in range(torch.cuda.device_count())
            ]
    return []


def cmd_gradcheck(args: argparse.Namespace) -> int:
    options = _options(args)
    data = load_dataset(options["data"])
    n = min(args.samples, len(data))
    _check_memory(_sizes(options, data), {**options, "batch_size": n}, n, "float64", slots=0)
    net = _build_net(options, data, "float64")
    X, T = prepare(net, data.X[:n], data.y[:n])
    loss = LOSSES[options["loss"]]()
    with np.errstate(all="ignore"):  # a saturated net may overflow exp: the errors tell
        errors = gradcheck(net, loss, X, T, eps=GRADCHECK_EPS)
        tolerances = _tolerances(net, loss, X, T)
    print(f"relative error of backward vs central differences ({net!r}, {X.shape[0]} samples):")
    for name, error in errors.items():
        note = (
            ""
            if tolerances[name] == GRADCHECK_TOLERANCE
            else f"  (tolerance {tolerances[name]:.2g})"
        )
        print(f"  {name:<6}{error:.2e}{note}")
    worst = max(errors, key=lambda name: errors[name] / tolerances[name])  # nearest its bound
    passed = all(errors[name] < tolerances[name] for name in errors)
    verdict = "ok" if passed else "FAILED"
    print(f"{verdict}: largest {errors[worst]:.2e} ({worst}; tolerance {tolerances[worst]:.2g})")
    return EXIT_OK if passed else EXIT_FAILED


def _tolerances(net: MLP, loss: Any, X: Any, T: Any) -> dict[str, float]:
    """The bound on each relative error (per parameter, and "input" for dL/dX): 1e-6, or the
    error float64 rounding alone gives central differences, times a margin, if that is larger.

    Each loss value carries a rounding error of about u |L| (u = 2.2e-16), so every central
    difference (f(x + eps) - f(x - eps)) / (2 eps) is off by about u |L| / eps, and k of them
    by sqrt(k) u |L| / eps in norm: relative to the gradient's norm ||g||, a floor of
    u |L| sqrt(k) / (2 eps ||g||). For the weights that floor does not depend on the batch
    (the loss is a mean, and so are their gradients); for the input it grows in proportion to
    the batch (each sample's dL/dx shrinks as 1/n while k grows as n), which is why a fixed
    1e-6 failed a correct backward at 1797 samples. Measured errors of a correct backward lie
    3-5x below the floor; a wrong backward gives errors of 1e-2 and more, so the bound is
    capped at 1e-2."""
    value = abs(float(to_numpy(loss.forward(net.forward(X), T))))
    gX = net.backward(loss.backward())
    grads = {name: to_numpy(g) for name, g in net.grads.items()}
    grads["input"] = to_numpy(gX)
    u = float(np.finfo(np.float64).eps)
    out = {}
    for name, g in grads.items():
        norm = float(np.linalg.norm(g))
        floor = u * value * math.sqrt(g.size) / (2 * GRADCHECK_EPS * norm) if norm else math.inf
        out[name] = min(max(GRADCHECK_TOLERANCE, ROUNDING_MARGIN * floor), 1e-2)
    return out
