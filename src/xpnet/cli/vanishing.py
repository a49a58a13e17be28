"""`xpnet vanishing`: the disease and its cures side by side. For fresh nets of each depth, the
first layer's weight-gradient norm over the last layer's, for plain nets of each activation and
for the first activation with normalization and residual blocks; then the held-out accuracy
each kind reaches at the deepest depth in the same short training run."""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import plots
from ..data import Dataset, load_dataset, one_hot, train_test_split
from ..diagnostics import NetKind, accuracy_study, first_over_last, vanishing_study
from .config import SPLIT_SEED, TEST_FRACTION, check_memory
from .outputs import Outputs
from .runs import draw, json_bytes, new_run_dir

__all__ = ["BATCH_SIZE", "LR", "cmd_vanishing", "net_names"]

# the short training run every net kind gets: Adam at this rate, batches of this size
LR, BATCH_SIZE = 1e-3, 32


def net_names(activations: Sequence[str], norm: str | None, residual: bool) -> list[str]:
    """The study's nets: a plain net per activation, then the first activation with the cures
    asked for: with `norm`, with residual blocks, and with both."""
    cured = activations[0]
    cures = [NetKind(cured, norm), NetKind(cured, None, residual), NetKind(cured, norm, residual)]
    names = [*activations, *(kind.name for kind in cures)]
    return list(dict.fromkeys(names))  # in order, each once (no cure: just the plain nets)


def cmd_vanishing(args: argparse.Namespace) -> None:
    outputs = Outputs(args.overwrite)
    if args.out is not None:  # refused before any file is written
        for name in ("vanishing.json", "vanishing.png"):
            outputs.claim(args.out / name)
    data = load_dataset(args.data)
    rows = np.random.default_rng(args.seed).permutation(len(data))[: args.batch_size]
    X, T = data.X[rows], one_hot(data.y[rows], data.n_classes)
    deepest = [data.n_features, *[args.width] * (max(args.depths) - 1), data.n_classes]
    check_memory(
        deepest, args.backend, args.device, len(X), args.dtype, len(X), fix="use a smaller --width"
    )
    nets = net_names(args.activations, None if args.norm == "none" else args.norm, args.residual)
    place = {"backend": args.backend or "auto", "device": args.device, "dtype": args.dtype}
    gradients = vanishing_study(args.depths, nets, X, T, width=args.width, seed=args.seed, **place)
    results: dict[str, Any] = {
        "data": data.name,
        "width": args.width,
        "samples": len(X),
        "seed": args.seed,
        "gradients": gradients,
        "first_over_last": {
            net: {depth: first_over_last(norms) for depth, norms in by_depth.items()}
            for net, by_depth in gradients.items()
        },
    }
    print(
        f"first layer's / last layer's weight-gradient norm, fresh nets ({args.width} units "
        f"wide), {len(X)} samples of {data.name}:"
    )
    print(_table(results["first_over_last"], args.depths))
    if args.epochs:
        results.update(_training(args, data, nets, place))
        training = results["training"]
        print(
            f"held-out accuracy at depth {training['depth']} after {args.epochs} epochs (Adam "
            f"{LR:g}, batch {BATCH_SIZE}; {training['train_samples']} train / "
            f"{training['test_samples']} test samples):"
        )
        print(
            _row(
                "accuracy",
                [f"{100 * acc[-1]:.0f} %" for acc in results["accuracy"].values()],
                _widths(nets),
            )
        )
    out = args.out or new_run_dir("vanishing")
    out.mkdir(parents=True, exist_ok=True)
    outputs.write(out / "vanishing.json", json_bytes(results))
    plot = functools.partial(plots.plot_vanishing, accuracy=results.get("accuracy"))
    drawn = draw(plot, gradients, out / "vanishing.png", outputs)
    print(f"saved in {out}: vanishing.json" + (", vanishing.png" if drawn else ""))


def _training(
    args: argparse.Namespace, data: Dataset, nets: Sequence[str], place: dict[str, Any]
) -> dict[str, Any]:
    """The short training run of every net at the deepest depth, on the fixed split the
    training command uses: {"training": its settings, "accuracy": {net: per epoch}}."""
    train, test = train_test_split(data, TEST_FRACTION, SPLIT_SEED)
    depth = max(args.depths)
    accuracy = accuracy_study(
        nets,
        depth,
        (train.X, train.y),
        (test.X, test.y),
        data.n_classes,
        width=args.width,
        epochs=args.epochs,
        batch_size=BATCH_SIZE,
        lr=LR,
        seed=args.seed,
        **place,
    )
    settings = {
        "depth": depth,
        "epochs": args.epochs,
        "optimizer": "adam",
        "lr": LR,
        "batch_size": BATCH_SIZE,
        "train_samples": len(train),
        "test_samples": len(test),
    }
    return {"training": settings, "accuracy": accuracy}


def _widths(names: Sequence[str]) -> list[int]:
    """Each column as wide as its net's name, and at least 10."""
    return [max(10, len(name) + 2) for name in names]


def _row(label: str, cells: Sequence[str], widths: Sequence[int]) -> str:
    return f"{label:<10}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))


def _table(ratios: Mapping[str, Mapping[str, float]], depths: Sequence[int]) -> str:
    """Depth by net: layer 1's gradient norm over the last layer's ("n/a" where the last
    layer's is 0: a one-sample batch can give that)."""
    names, widths = list(ratios), _widths(list(ratios))
    lines = [_row("depth", names, widths)]
    for d in depths:
        cells = [_number(ratios[n][str(d)]) for n in names]
        lines.append(_row(str(d), cells, widths))
    return "\n".join(lines)


def _number(ratio: float) -> str:
    return "n/a" if math.isnan(ratio) else f"{ratio:.3g}"
