"""xpnet.sklearn.MLPClassifier against scikit-learn's MLPClassifier on the digits: the same
split, logistic hidden units, the same hidden sizes, solver, learning rate, batch size and
stopping rule; test accuracy of each and xpnet's fit time over scikit-learn's, from one run.

scikit-learn's L2 penalty is set to alpha=0 because xpnet has none. xpnet also runs on PyTorch
(CPU, or CUDA when present) and CuPy when a GPU is usable, through scikit-learn's array API
dispatch: the digits go in as that library's arrays.

    python benchmarks/compare_sklearn.py [--out DIR]    # DIR/compare_sklearn.{json,md}
"""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy loads: array API dispatch needs it

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP

import xpnet
from xpnet.data import load_digits, train_test_split
from xpnet.sklearn import MLPClassifier

SETTINGS = dict(
    hidden_layer_sizes=(100,),
    activation="logistic",
    solver="adam",
    learning_rate_init=1e-3,
    batch_size=200,
    max_iter=200,
    tol=1e-4,
    n_iter_no_change=10,
    random_state=0,
)


def _places() -> list[tuple[str, Any]]:
    """(label, function moving a host array there) for every library xpnet can train on here."""
    places: list[tuple[str, Any]] = [("numpy", None)]
    status = xpnet.available_backends()
    if status["torch"] == "ok":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        places.append((f"torch {device}", lambda a: torch.asarray(a, device=device)))
    if status["cupy"] == "ok":
        import cupy

        places.append(("cupy", cupy.asarray))
    return places


def _run(model: Any, X_train, y_train, X_test, y_test, dispatch: bool) -> dict[str, Any]:
    """Fit once (timed), then the test accuracy; records whether max_iter stopped it."""
    with (
        sklearn.config_context(array_api_dispatch=dispatch),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        xpnet.to_numpy(model.coefs_[0])  # wait for the device
        seconds = time.perf_counter() - start
        accuracy = float(model.score(X_test, y_test))
    hit_max_iter = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {
        "accuracy": accuracy,
        "fit_seconds": seconds,
        "epochs": int(model.n_iter_),
        "hit_max_iter": hit_max_iter,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="directory for compare_sklearn.{json,md}")
    args = parser.parse_args()

    train, test = train_test_split(load_digits(), test_fraction=0.2, seed=0)
    data = (train.X, train.y, test.X, test.y)
    rows = {"scikit-learn": _run(SklearnMLP(alpha=0.0, **SETTINGS), *data, dispatch=False)}
    for label, move in _places():
        moved = data if move is None else tuple(move(a) for a in data)
        rows[f"xpnet ({label})"] = _run(
            MLPClassifier(**SETTINGS), *moved, dispatch=move is not None
        )
    reference = rows["scikit-learn"]
    for row in rows.values():
        row["accuracy_points_vs_sklearn"] = 100 * (row["accuracy"] - reference["accuracy"])
        row["fit_time_ratio"] = row["fit_seconds"] / reference["fit_seconds"]

    result = {
        "settings": {**SETTINGS, "sklearn_alpha": 0.0},
        "data": {"dataset": "digits", "train": len(train), "test": len(test), "split_seed": 0},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "xpnet": xpnet.__version__,
        },
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    table = _markdown(rows)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare_sklearn.json").write_text(json.dumps(result, indent=1))
        (args.out / "compare_sklearn.md").write_text(table)


def _markdown(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| model | test accuracy | vs scikit-learn (points) | epochs | fit s | fit time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        epochs = f"{r['epochs']}{' (max_iter)' if r['hit_max_iter'] else ''}"
        lines.append(
            f"| {name} | {r['accuracy']:.4f} | {r['accuracy_points_vs_sklearn']:+.2f} | "
            f"{epochs} | {r['fit_seconds']:.2f} | {r['fit_time_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
