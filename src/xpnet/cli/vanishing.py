"""`xpnet vanishing`: per-layer gradient norms of fresh nets by depth."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from .. import plots
from ..data import load_dataset, one_hot
from ..diagnostics import vanishing_study
from .config import check_memory
from .outputs import Outputs
from .runs import draw, json_bytes, new_run_dir

__all__ = ["cmd_vanishing"]


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
    out = args.out or new_run_dir("vanishing")
    out.mkdir(parents=True, exist_ok=True)
    outputs.write(out / "vanishing.json", json_bytes(results))
    drawn = draw(plots.plot_vanishing, results, out / "vanishing.png", outputs)
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
