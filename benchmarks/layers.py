"""What each layer of the layers issue costs: forward and backward of one layer on a batch,
xpnet (NumPy and PyTorch backends) against the same layer in PyTorch with autograd.

    python benchmarks/layers.py --out DIR [--batch 256] [--width 256] [--threads 2]

float32, median microseconds over interleaved chunks after a warm-up; the outputs of xpnet's
layer are checked against torch's (training mode; dropout at p=0 for the check) first. Writes
DIR/layers.json and DIR/layers.md."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import xpnet

LAYERS: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {
    # name: (xpnet layer for width n, torch module for width n)
    "Dropout(0.2)": (lambda n: xpnet.Dropout(0.2), lambda n: torch.nn.Dropout(0.2)),
    "LayerNorm": (xpnet.LayerNorm, torch.nn.LayerNorm),
    "BatchNorm": (xpnet.BatchNorm, torch.nn.BatchNorm1d),
    "GELU": (lambda n: xpnet.GELU(), lambda n: torch.nn.GELU()),
    "SiLU": (lambda n: xpnet.SiLU(), lambda n: torch.nn.SiLU()),
    "LeakyReLU": (lambda n: xpnet.LeakyReLU(), lambda n: torch.nn.LeakyReLU()),
    "Softplus": (lambda n: xpnet.Softplus(), lambda n: torch.nn.Softplus()),
    "ReLU (for scale)": (lambda n: xpnet.ReLU(), lambda n: torch.nn.ReLU()),
}


def _xpnet_step(layer: Any, backend: str, X: np.ndarray, G: np.ndarray) -> Callable[[], Any]:
    # a Linear in front gives the layer a net to live in; the step times the layer alone
    net = xpnet.Sequential([xpnet.Linear(X.shape[1], X.shape[1]), layer], backend=backend)
    x, g = xpnet.asarray(X, like=net), xpnet.asarray(G, like=net)

    def step() -> Any:
        layer.forward(x)
        return layer.backward(g)

    return step


def _torch_step(module: Any, X: np.ndarray, G: np.ndarray) -> Callable[[], Any]:
    x = torch.from_numpy(X).requires_grad_(True)
    g = torch.from_numpy(G)

    def step() -> Any:
        module(x).backward(g)
        return x.grad

    return step


def _check(name: str, layer: Any, module: Any, X: np.ndarray) -> None:
    """xpnet's output equals torch's on X (training mode), dropout aside (random masks)."""
    if isinstance(layer, xpnet.Dropout):
        return
    xpnet.Sequential([xpnet.Linear(X.shape[1], X.shape[1]), layer])
    got = np.asarray(layer.forward(X))
    want = module(torch.from_numpy(X)).detach().numpy()
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise SystemExit(f"{name}: xpnet's output differs from torch's")


def _median_us(step: Callable[[], Any], chunks: int = 15, per_chunk: int = 20) -> list[float]:
    for _ in range(5):
        step()
    out = []
    for _ in range(chunks):
        start = time.perf_counter()
        for _ in range(per_chunk):
            step()
        out.append((time.perf_counter() - start) / per_chunk * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.batch, args.width)).astype(np.float32)
    G = rng.normal(size=(args.batch, args.width)).astype(np.float32)
    results: dict[str, dict[str, float]] = {}
    with threadpool_limits(args.threads):
        for name, (make, make_torch) in LAYERS.items():
            _check(name, make(args.width), make_torch(args.width), X)
            steps = {
                "xpnet[numpy]": _xpnet_step(make(args.width), "numpy", X, G),
                "xpnet[torch]": _xpnet_step(make(args.width), "torch", X, G),
                "torch autograd": _torch_step(make_torch(args.width), X, G),
            }
            times: dict[str, list[float]] = {k: [] for k in steps}
            for _ in range(3):  # interleaved rounds
                for key, step in steps.items():
                    times[key] += _median_us(step)
            results[name] = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"Forward + backward of one layer, batch {args.batch} x {args.width}, float32, "
        f"{args.threads} threads, median us:",
        "",
        "| layer | xpnet[numpy] | xpnet[torch] | torch autograd | xpnet[torch] / torch |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['xpnet[numpy]']:.1f} | {r['xpnet[torch]']:.1f} | "
            f"{r['torch autograd']:.1f} | {r['xpnet[torch]'] / r['torch autograd']:.2f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "layers.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "layers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
