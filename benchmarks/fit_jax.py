"""JAX's compiled epochs against its op-by-op path and NumPy: `xpnet.fit`'s own per-epoch
seconds, one process, the three interleaved epoch by epoch.

    python benchmarks/fit_jax.py --out DIR [--epochs 6] [--threads 2]

Two sizes (ReLU, softmax cross-entropy, Adam lr 1e-3, float32): "digits", the packaged 1,797
digits on a 64-128-10 net at batch 64, and "mnist", 10,000 MNIST-shaped uniform samples on
784-256-256-10 at batch 128. The first epoch (which traces and compiles) is reported apart;
the table gives the median of the rest and its ratio to NumPy's. Writes DIR/fit_jax.json and
DIR/fit_jax.md."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import xpnet
from xpnet.data import load_digits

RUNS = {  # name: (backend, compiled)
    "numpy": ("numpy", True),
    "jax op by op": ("jax", False),
    "jax compiled": ("jax", True),
}


def _problem(name: str) -> tuple[list[int], int, np.ndarray, np.ndarray]:
    if name == "digits":
        data = load_digits()
        return [64, 128, 10], 64, data.X.astype(np.float32), data.y
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (10_000, 784)).astype(np.float32)
    return [784, 256, 256, 10], 128, X, rng.integers(0, 10, len(X))


def measure(name: str, epochs: int) -> dict[str, dict[str, float]]:
    sizes, batch, X, y = _problem(name)
    nets, optimizers, seconds = {}, {}, {run: [] for run in RUNS}
    for run, (backend, _) in RUNS.items():
        nets[run] = xpnet.MLP(sizes, "relu", "identity", backend=backend, seed=0)
        optimizers[run] = xpnet.Adam(1e-3)
    data = {run: (xpnet.asarray(X, like=nets[run]), nets[run].backend.from_host(y)) for run in RUNS}
    for epoch in range(epochs):
        for run, (_, compiled) in RUNS.items():
            history = xpnet.fit(
                nets[run], *data[run], loss="softmax_ce", optimizer=optimizers[run],
                epochs=epoch + 1, initial_epoch=epoch, batch_size=batch, compiled=compiled,
            )  # fmt: skip
            seconds[run].append(history.last["seconds"])
    numpy_median = statistics.median(seconds["numpy"][1:])
    return {
        run: {
            "first_s": s[0],
            "median_s": statistics.median(s[1:]),
            "vs_numpy": statistics.median(s[1:]) / numpy_median,
        }
        for run, s in seconds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with threadpool_limits(args.threads):
        results = {name: measure(name, args.epochs) for name in ("digits", "mnist")}
    lines = ["| size | run | first epoch s | epoch s (median) | / numpy |", "|---|---|---|---|---|"]
    for name, runs in results.items():
        for run, r in runs.items():
            lines.append(
                f"| {name} | {run} | {r['first_s']:.3f} | {r['median_s']:.4f} | "
                f"{r['vs_numpy']:.2f} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fit_jax.json").write_text(json.dumps(results, indent=2))
    (args.out / "fit_jax.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
