"""The pictures the command line draws: training curves and the vanishing-gradient study.

matplotlib is an optional extra (`pip install 'xpnet[plot]'`): it is imported only when a
picture is drawn, and a missing matplotlib raises ImportError for the caller to report. Figures
are built with `matplotlib.figure.Figure`, not pyplot, so no GUI backend or global state is
involved."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .diagnostics import first_over_last
from .files import write_atomic

__all__ = ["INSTALL_HINT", "plot_confusion", "plot_curves", "plot_vanishing"]

INSTALL_HINT = "pip install 'xpnet[plot]'"


def _save(fig: Any, path: str | os.PathLike) -> None:
    """The figure as a PNG at `path`, written atomically."""
    buffer = io.BytesIO()
    with _quiet_log_scale():
        fig.savefig(buffer, format="png", dpi=110)
    write_atomic(path, buffer.getvalue())


@contextlib.contextmanager
def _quiet_log_scale() -> Iterator[None]:
    """A log axis whose data has no positive value (all gradients zero, say) draws empty;
    matplotlib's warning about it is not the user's business."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Data has no positive values", UserWarning)
        yield


def _figure(ncols: int) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5 * ncols, 3.8), layout="constrained")
    return fig, fig.subplots(1, ncols)


def plot_curves(records: Sequence[Mapping[str, float]], path: str | os.PathLike) -> None:
    """Loss and (when recorded) accuracy per epoch, train and validation, saved as a PNG at
    `path`. `records` are History records ("val_" keys: the validation set's)."""
    metrics = [m for m in ("loss", "accuracy") if any(m in r for r in records)]
    fig, axes = _figure(len(metrics))
    axes = axes if len(metrics) > 1 else [axes]
    for ax, metric in zip(axes, metrics, strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            rows = [r for r in records if key in r]
            if rows:
                ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        with _quiet_log_scale():
            ax.set_yscale("log" if metric == "loss" else "linear")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def plot_confusion(
    matrix: Sequence[Sequence[int]], path: str | os.PathLike, *, labels: Sequence[str]
) -> None:
    """A confusion matrix (rows: true class, columns: predicted) as a PNG at `path`: each
    cell's count, shaded by its share of the true class's samples."""
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 2.5 + 0.45 * len(labels))
    fig, ax = _figure(1)
    fig.set_size_inches(side, side * 0.85)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=90 if len(labels) > 10 else 0)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(labels) <= 30:  # beyond that the numbers no longer fit their cells
        for (i, j), count in np.ndenumerate(counts):
            color = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    _save(fig, path)


def plot_vanishing(
    results: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | os.PathLike,
    accuracy: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """The disease and its cures, one line (and colour) per net in every panel. Left: layer
    1's weight-gradient norm over the last layer's against depth, with the factor 1/4 per
    sigmoid layer drawn dashed for reference. Middle: every layer's norm in the deepest net.
    Right (given `accuracy`, {net: held-out accuracy per epoch}): the accuracy each net reaches
    epoch by epoch. `results` is `vanishing_study`'s. Log scale for the norms; saved as a PNG
    at `path`."""
    fig, axes = _figure(2 if accuracy is None else 3)
    by_depth, by_layer = axes[:2]
    depths = sorted({int(d) for norms in results.values() for d in norms})
    for net, norms in results.items():
        ratios = [first_over_last(norms[str(d)]) for d in depths]
        by_depth.plot(depths, ratios, "o-", label=net)
        deepest = norms[str(depths[-1])]
        by_layer.plot(range(1, len(deepest) + 1), deepest, "o-", label=net)
    if any(net.split("+")[0] == "sigmoid" for net in results):
        quarter = [0.25 ** (d - 1) for d in depths]
        (dashed,) = by_depth.plot(depths, quarter, "k--", lw=1, label="x 1/4 per layer")
        by_depth.legend(handles=[dashed], fontsize="small")
    by_depth.set_title("layer 1's gradient / the last layer's, fresh nets")
    by_depth.set_xlabel("depth (weight layers)")
    by_depth.set_ylabel("ratio of ||dL/dW||")
    by_layer.set_title(f"each layer's gradient at depth {depths[-1]}")
    by_layer.set_xlabel("layer (1 = input side)")
    by_layer.set_ylabel("||dL/dW||")
    for ax in (by_depth, by_layer):
        with _quiet_log_scale():
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    by_layer.legend(fontsize="small")
    if accuracy is not None:
        trained = axes[2]
        for net, per_epoch in accuracy.items():
            trained.plot(range(1, len(per_epoch) + 1), per_epoch, "o-", ms=3, label=net)
        trained.set_title(f"held-out accuracy at depth {depths[-1]}")
        trained.set_xlabel("epoch")
        trained.set_ylabel("accuracy")
        trained.set_ylim(0, 1)
        trained.grid(alpha=0.3)
    _save(fig, path)
