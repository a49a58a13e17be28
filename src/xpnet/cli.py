"""The `xpnet` command: train, evaluate, predict, vanishing, info and gradcheck.

Every user mistake (a file that is missing or malformed, an option that does not parse, an
unusable backend, a corrupt checkpoint) ends the command with one line on stderr and exit
status 2; tracebacks are kept for bugs.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import io
import json
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots
from .backend import BACKEND_NAMES, DTYPE_NAMES, available_backends, to_numpy
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
}
LEARNING_RATES = {"sgd": 0.5, "momentum": 0.1, "adam": 0.01}
OUTPUT_FOR_LOSS = {"softmax_ce": "identity", "sse": "sigmoid", "mse": "sigmoid", "bce": "sigmoid"}
RESUMABLE = ("epochs", "backend", "device")  # what `--resume` may change
TEST_FRACTION, SPLIT_SEED = 0.2, 0  # one fixed held-out split, whatever the model's seed
GRADCHECK_TOLERANCE = 1e-6
COMMANDS = ("train", "evaluate", "predict", "vanishing", "info", "gradcheck")


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
    va.add_argument("--seed", type=int, default=0)
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
    parser.add_argument("--seed", type=int, help="initial weights and shuffling; default: 0")
    _placement_options(parser)


# -- main -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 when gradcheck fails, 2 on a user mistake."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return args.run(args) or 0
    except UsageError as err:
        return _fail(_command(argv), err)
    except (ValueError, OSError) as err:  # DataError, BackendError, CheckpointError, files
        return _fail(_command(argv), err)
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130


def _command(argv: Sequence[str]) -> str:
    """ "xpnet train" etc. for error messages; plain "xpnet" before a known command."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return f"xpnet {first}" if first in COMMANDS else "xpnet"


def _fail(command: str, err: BaseException) -> int:
    if isinstance(err, OSError) and err.strerror:
        message = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    else:
        message = str(err)
    print(f"{command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


# -- train ------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> None:
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
    train_set, test_set = train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    if ck is None:
        net = _build_net(options, data, options["dtype"])
        optimizer = OPTIMIZERS[options["optimizer"]](lr=options["lr"])
        history, start = History(), 0
    else:
        net, optimizer, history, start = ck.net, ck.optimizer, History(ck.history), ck.epoch
    print(
        f"{data.name}: {len(train_set)} train / {len(test_set)} test samples; "
        f"{' -> '.join(map(str, net.sizes))} {net.hidden} MLP, {options['loss']}, "
        f"{options['optimizer']} lr {options['lr']}, batch {options['batch_size']}; "
        f"{net.backend.name} on {net.backend.device}, {net.dtype_name}"
        + (f"; resuming at epoch {start}" if start else "")
    )
    out = out or _new_run_dir(Path(options["data"]).stem)  # made once the setup is known good
    out.mkdir(parents=True, exist_ok=True)

    def checkpoint(epoch: int, record: dict[str, float]) -> None:
        """After every epoch, so an interrupted run can be resumed."""
        save(
            net,
            out,
            {"options": options},
            optimizer=optimizer,
            epoch=epoch,
            seed=options["seed"],
            history=history.records,
        )

    fit(
        net,
        train_set.X,
        train_set.y,
        loss=LOSSES[options["loss"]](),
        optimizer=optimizer,
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        seed=options["seed"],
        validation=(test_set.X, test_set.y),
        progress=sys.stderr.isatty(),
        callbacks=[checkpoint],
        initial_epoch=start,
        history=history,
    )
    metrics = _metrics(history, net, options, len(train_set), len(test_set))
    _write_json(out / "metrics.json", metrics)
    _write_history(out / "history.csv", history)
    drawn = _draw(plots.plot_curves, history.records, out / "curves.png")
    print(
        f"test accuracy {100 * metrics['test_accuracy']:.1f} % (loss {metrics['test_loss']:.4g}) "
        f"after {metrics['epochs']} epochs, {metrics['seconds']:.1f} s of training, "
        f"{metrics['backend']} on {metrics['device']}"
    )
    files = [FILENAME, "metrics.json", "history.csv"] + (["curves.png"] if drawn else [])
    print(f"saved in {out}: {', '.join(files)}")


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
        [data.n_features, *options["hidden"], data.n_classes],
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
    options = stored.metadata.get("options")
    if not isinstance(options, dict) or set(options) != set(DEFAULTS):
        raise UsageError(f"{args.resume} was not written by `xpnet train`, so it cannot resume")
    if args.backend is not None and args.device is None:
        options["device"] = None  # the stored device belongs to the stored backend
    options.update({k: getattr(args, k) for k in RESUMABLE if getattr(args, k) is not None})
    ck = stored.load(options["backend"], options["device"])
    if args.epochs is None or args.epochs <= ck.epoch:
        raise UsageError(
            f"the run in {args.resume} has {ck.epoch} epochs; give the total to reach with "
            f"--epochs N, N > {ck.epoch}"
        )
    return options, ck


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
    history: History, net: MLP, options: dict[str, Any], n_train: int, n_test: int
) -> dict[str, Any]:
    last = history.last
    seconds = sum(history["seconds"])
    return {
        "test_accuracy": last["val_accuracy"],
        "test_loss": last["val_loss"],
        "train_accuracy": last["accuracy"],
        "train_loss": last["loss"],
        "epochs": len(history),
        "backend": net.backend.name,
        "device": str(net.backend.device),
        "dtype": net.dtype_name,
        "seconds": seconds,
        "samples_per_second": n_train * len(history) / seconds if seconds else None,
        "data": options["data"],
        "n_train": n_train,
        "n_test": n_test,
    }


def _write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode())


def _write_history(path: Path, history: History) -> None:
    """One row per epoch; the validation columns are the test split's, so they say test_."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow([k.replace("val_", "test_") for k in history.keys()])
    writer.writerows([list(r.values()) for r in history.records])
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
    options = ck.metadata.get("options", {})
    if args.data is not None:
        data, where = load_dataset(args.data), "all samples"
    elif "data" in options:
        data, where = (
            train_test_split(load_dataset(options["data"]), TEST_FRACTION, SPLIT_SEED)[1],
            "the test split",
        )
    else:
        raise UsageError(f"{args.run_dir} does not say what data it was trained on; give --data")
    loss = LOSSES[options.get("loss", _default_loss(ck.net))]()
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
    rows.append(
        (f"ratio {hi}/{lo}", [f"{results[n][hi][0] / results[n][lo][0]:.3g}" for n in names])
    )
    return "\n".join(f"{label:<11}" + "".join(f"{c:>11}" for c in cells) for label, cells in rows)


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
    net = _build_net(options, data, "float64")
    X, T = prepare(net, data.X[: args.samples], data.y[: args.samples])
    errors = gradcheck(net, LOSSES[options["loss"]](), X, T)
    print(f"relative error of backward vs central differences ({net!r}, {X.shape[0]} samples):")
    for name, error in errors.items():
        print(f"  {name:<6}{error:.2e}")
    worst = max(errors.values())
    passed = worst < GRADCHECK_TOLERANCE
    print(
        f"{'ok' if passed else 'FAILED'}: largest {worst:.2e} (tolerance {GRADCHECK_TOLERANCE:g})"
    )
    return 0 if passed else 1
