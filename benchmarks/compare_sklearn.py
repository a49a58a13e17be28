"""xpnet.sklearn against scikit-learn's own MLP estimators on four of scikit-learn's bundled
datasets (digits, breast cancer, iris: MLPClassifier; diabetes: MLPRegressor), 5 seeds each:
test score (accuracy, or R^2 for diabetes), xpnet's fit time over scikit-learn's, and how far
xpnet's fitted coefs_ are from scikit-learn's (max relative difference).

Both get the same arguments, scikit-learn's defaults (relu, hidden_layer_sizes=(100,), adam,
alpha=1e-4, batch_size="auto", max_iter=200, tol=1e-4), and random_state=seed; the split is
train_test_split(test_size=0.25, random_state=seed), stratified for the classifiers; X is
standardized on the training part (and diabetes' y too). xpnet also runs on PyTorch (CPU, or
CUDA when present) and CuPy when a GPU is usable, through scikit-learn's array API dispatch.

    python benchmarks/compare_sklearn.py [--seeds 5] [--out DIR]    # DIR/compare_sklearn.{json,md}
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
from sklearn import datasets
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import xpnet
import xpnet.sklearn as xs

DATASETS = {
    "digits": (datasets.load_digits, "classifier"),
    "breast_cancer": (datasets.load_breast_cancer, "classifier"),
    "iris": (datasets.load_iris, "classifier"),
    "diabetes": (datasets.load_diabetes, "regressor"),
}


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


def _split(name: str, seed: int) -> tuple[np.ndarray, ...]:
    load, kind = DATASETS[name]
    X, y = load(return_X_y=True)
    stratify = y if kind == "classifier" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=seed, stratify=stratify
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if kind == "regressor":
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    return X_train, X_test, y_train, y_test


def _flat(model: Any) -> np.ndarray:
    return np.concatenate([xpnet.to_numpy(a).ravel() for a in model.coefs_ + model.intercepts_])


def _run(model: Any, data: tuple[Any, ...], dispatch: bool) -> dict[str, Any]:
    """Fit once (timed), then the test score; records whether max_iter stopped it."""
    X_train, X_test, y_train, y_test = data
    with (
        sklearn.config_context(array_api_dispatch=dispatch),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        xpnet.to_numpy(model.coefs_[0])  # wait for the device
        seconds = time.perf_counter() - start
        score = float(model.score(X_test, y_test))
    return {
        "score": score,
        "fit_seconds": seconds,
        "epochs": int(model.n_iter_),
        "hit_max_iter": any(issubclass(w.category, ConvergenceWarning) for w in caught),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="directory for compare_sklearn.{json,md}")
    args = parser.parse_args()

    warm = _split("iris", 0)  # one short fit per library first: imports and first calls untimed
    for _, move in _places():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _run(
                xs.MLPClassifier(max_iter=2),
                warm if move is None else tuple(map(move, warm)),
                dispatch=move is not None,
            )
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, (_, kind) in DATASETS.items():
        theirs_cls = sk.MLPClassifier if kind == "classifier" else sk.MLPRegressor
        ours_cls = xs.MLPClassifier if kind == "classifier" else xs.MLPRegressor
        rows: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.seeds):
            data = _split(name, seed)
            reference = theirs_cls(random_state=seed)
            rows.setdefault("scikit-learn", []).append(_run(reference, data, dispatch=False))
            for label, move in _places():
                ours = ours_cls(random_state=seed)
                moved = data if move is None else tuple(move(a) for a in data)
                run = _run(ours, moved, dispatch=move is not None)
                a, b = _flat(ours).astype(np.float64), _flat(reference)
                run["coef_rel_diff"] = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                run["fit_time_ratio"] = run["fit_seconds"] / rows["scikit-learn"][-1]["fit_seconds"]
                rows.setdefault(f"xpnet ({label})", []).append(run)
            print(name, seed, {k: round(v[-1]["score"], 4) for k, v in rows.items()}, flush=True)
        runs[name] = rows

    result = {
        "settings": "scikit-learn's defaults; random_state=seed; test_size=0.25",
        "seeds": args.seeds,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "xpnet": xpnet.__version__,
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "runs": runs,
    }
    table = _markdown(runs)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare_sklearn.json").write_text(json.dumps(result, indent=1))
        (args.out / "compare_sklearn.md").write_text(table)


def _markdown(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = [
        "| dataset | model | test score (mean ± sd) | epochs (mean) | fit s (mean) "
        "| fit time ratio (median) | coefs_ rel. diff. (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in runs.items():
        metric = "R²" if DATASETS[name][1] == "regressor" else "accuracy"
        for model, seeds in rows.items():
            scores = np.array([r["score"] for r in seeds])
            epochs = np.mean([r["epochs"] for r in seeds])
            seconds = np.mean([r["fit_seconds"] for r in seeds])
            ratio = np.median([r.get("fit_time_ratio", 1.0) for r in seeds])
            diff = max(r.get("coef_rel_diff", 0.0) for r in seeds)
            diff_text = "—" if model == "scikit-learn" else f"{diff:.1e}"
            lines.append(
                f"| {name} ({metric}) | {model} | {scores.mean():.4f} ± {scores.std():.4f} | "
                f"{epochs:.0f} | {seconds:.2f} | {ratio:.2f} | {diff_text} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
