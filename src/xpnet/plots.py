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

from .files import write_atomic

__all__ = ["INSTALL_HINT", "plot_curves", "plot_vanishing"]

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


def plot_vanishing(
    results: Mapping[str, Mapping[str, Sequence[float]]], path: str | os.PathLike
) -> None:
    """Left: layer 1's weight-gradient norm against depth, one line per activation, with the
    factor 1/4 per sigmoid layer drawn dashed for reference. Right: every layer's norm in the
    deepest net. Log scale; saved as a PNG at `path`."""
    fig, (by_depth, by_layer) = _figure(2)
    depths = sorted({int(d) for norms in results.values() for d in norms})
    for activation, norms in results.items():
        by_depth.plot(depths, [norms[str(d)][0] for d in depths], "o-", label=activation)
        deepest = norms[str(depths[-1])]
        by_layer.plot(range(1, len(deepest) + 1), deepest, "o-", label=activation)
    if "sigmoid" in results:
        first = results["sigmoid"][str(depths[0])][0]
        quarter = [first * 0.25 ** (d - depths[0]) for d in depths]
        by_depth.plot(depths, quarter, "k--", lw=1, label="x 1/4 per layer")
    by_depth.set_title("layer 1's gradient in a fresh net")
    by_depth.set_xlabel("depth (weight layers)")
    by_layer.set_title(f"each layer's gradient at depth {depths[-1]}")
    by_layer.set_xlabel("layer (1 = input side)")
    for ax in (by_depth, by_layer):
        with _quiet_log_scale():
            ax.set_yscale("log")
        ax.set_ylabel("||dL/dW||")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    _save(fig, path)
