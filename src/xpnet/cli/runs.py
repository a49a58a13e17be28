"""Run directories and what goes into them: config.json, metrics.json, plots."""

from __future__ import annotations

import datetime
import json
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots
from ..checkpoint import FILENAME
from ..layers.sequence import parameter_count
from ..sequential import Sequential
from ..train import History
from .config import Splits
from .errors import UsageError
from .info import version
from .options import TrainOptions
from .outputs import Outputs

__all__ = [
    "BEST",
    "RUN_FILES",
    "draw",
    "json_bytes",
    "new_run_dir",
    "percent",
    "run_config",
    "run_metrics",
    "run_model",
]

BEST = "best.safetensors"  # with --early-stopping: the best epoch's net, what evaluate uses
# every file `xpnet train` writes into a run directory
RUN_FILES = (FILENAME, BEST, "config.json", "metrics.json", "history.csv", "curves.png")


def run_model(run: Path) -> Path:
    """The net a run stands for: with early stopping, its best epoch's (best.safetensors),
    else its checkpoint (the last epoch's; a .safetensors file is itself). A run that
    diverged before its first checkpoint is refused as such, not as a missing file."""
    if (run / BEST).is_file():
        return run / BEST
    if run.is_dir() and not (run / FILENAME).exists():
        diverged = _diverged_epoch(run)
        if diverged is not None:
            raise UsageError(
                f"the run in {run} diverged in epoch {diverged}, before any epoch was saved, "
                "so it has no net to use; train it again with a lower --lr (history.csv says "
                "how it went)"
            )
    return run


def _diverged_epoch(run: Path) -> int | None:
    """The epoch a run's metrics.json says it diverged in (None: it did not say so)."""
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(metrics, dict) and metrics.get("diverged") is True:
        return int(metrics.get("epochs") or 1)
    return None


def new_run_dir(name: str, root: Path = Path("runs")) -> Path:
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


def run_config(
    options: TrainOptions, net: Sequential, classes: np.ndarray | None, processes: int
) -> dict[str, Any]:
    """config.json: every option of the run (data path and SHA-256 among them), the net, the
    labels its class codes stand for, the number of processes and the versions that trained
    it."""
    return {
        "options": options.to_dict(),
        "net": net.config(),
        "classes": None if classes is None else classes.tolist(),
        "parameters": parameter_count(net.layers),
        "processes": processes,
        "versions": {
            "xpnet": version("xpnet"),
            "python": platform.python_version(),
            "numpy": version("numpy"),
            **{package: version(package) for package in net.backend.library.distributions},
        },
    }


def run_metrics(
    history: History,
    test: dict[str, float] | None,
    net: Sequential,
    options: TrainOptions,
    splits: Splits,
) -> dict[str, Any]:
    """What metrics.json holds: the test split's scores (computed once, after training; None
    when training diverged), the last epoch's training and validation scores, and the run."""
    last = history.last
    seconds = sum(history["seconds"])
    n_train = len(splits.fit)
    return {
        "test_accuracy": (test or {}).get("accuracy"),
        "test_loss": (test or {}).get("loss"),
        "test_r2": (test or {}).get("r2"),
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
        "data": options.data,
        "n_train": n_train,
        "n_val": 0 if splits.validation is None else len(splits.validation),
        "n_test": len(splits.test),
        "val_fraction": options.val_fraction,
    }


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f} %"


def _finite(obj: Any) -> Any:
    """obj with every NaN or infinite float replaced by None, so JSON stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def json_bytes(obj: Any) -> bytes:
    """Strict JSON (NaN and infinities written as null)."""
    return (json.dumps(_finite(obj), indent=2, allow_nan=False) + "\n").encode()


def draw(
    plot: Callable[..., None], data: Any, path: Path, outputs: Outputs, quiet: bool = False
) -> bool:
    """Draw with matplotlib if it is installed (to a file `outputs` allows); otherwise say in
    one line how to get it (unless `quiet`)."""
    try:
        plot(data, outputs.claim(path))
    except ImportError:
        if not quiet:
            print(f"matplotlib is not installed, so no {path.name}: {plots.INSTALL_HINT}")
        return False
    return True
