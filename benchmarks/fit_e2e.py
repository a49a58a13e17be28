"""End to end: one training epoch of `xpnet.fit` against what a user would otherwise write.

    python benchmarks/fit_e2e.py --out DIR [--samples 10000] [--rounds 7] [--device cpu|cuda]
                                 [--batch 128]

MNIST-shaped (784-256-256-10, ReLU, softmax cross-entropy, Adam lr 1e-3, batch 128, float32,
uniform random inputs and labels): xpnet.fit on NumPy and on PyTorch (on a GPU: torch-cuda
with its CUDA-graphed epochs and op by op, JAX, CuPy, and the loop under torch.compile's
"reduce-overhead" with a capturable Adam) against the plain PyTorch loop (`randperm`
batches; zero_grad; CrossEntropyLoss(model(x), y).backward(); Adam.step()) and scikit-learn's
MLPClassifier.partial_fit (one epoch, the same architecture and Adam). Every implementation
trains one epoch per round, the rounds interleaved so that load on a shared machine falls on
all alike; the table gives medians and their ratios to the PyTorch loop, written to
DIR/fit_e2e.json and DIR/fit_e2e.md (fit_e2e-batchN.* for another --batch)."""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import xpnet

SIZES, LR, BATCH = [784, 256, 256, 10], 1e-3, 128  # BATCH: the default --batch


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (n, SIZES[0])).astype(np.float32), rng.integers(0, 10, n)


def xpnet_epoch(
    backend: str,
    device: str | None,
    X: np.ndarray,
    y: np.ndarray,
    batch: int,
    compiled: bool = True,
) -> Callable:
    """One `xpnet.fit` epoch per call, the data moved to the device once, as a user would;
    `compiled=False` runs every step op by op (no CUDA graph, no jax.jit of the epoch)."""
    net = xpnet.MLP(SIZES, hidden="relu", output="identity", backend=backend, device=device)
    Xd, yd = xpnet.asarray(X, like=net), net.backend.from_host(y)
    loss, opt = xpnet.SoftmaxCrossEntropyLoss(), xpnet.Adam(LR)
    epoch = [0]

    def run() -> None:
        xpnet.fit(net, Xd, yd, loss=loss, optimizer=opt, epochs=epoch[0] + 1,
                  initial_epoch=epoch[0], batch_size=batch, compiled=compiled)  # fmt: skip
        epoch[0] += 1

    return run


def torch_loop_epoch(device: str, X: np.ndarray, y: np.ndarray, batch: int) -> Callable:
    """The plain PyTorch training loop."""
    import torch

    torch.manual_seed(0)
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(SIZES) - 2 else [])
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)

    def run() -> None:
        order = torch.randperm(Xt.shape[0], device=device)
        for s in range(0, Xt.shape[0], batch):
            idx = order[s : s + batch]
            opt.zero_grad(set_to_none=True)
            lossf(model(Xt[idx]), yt[idx]).backward()
            opt.step()

    return run


def torch_compiled_epoch(X: np.ndarray, y: np.ndarray, batch: int) -> Callable:
    """The PyTorch loop as its users make it fast on a GPU: the step under
    torch.compile(mode="reduce-overhead") (CUDA graphs) with Adam(capturable=True)."""
    import torch

    torch.manual_seed(0)
    layers: list = []
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(SIZES) - 2 else [])
    model = torch.nn.Sequential(*layers).to("cuda")
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(LR, device="cuda"), capturable=True)
    lossf = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X).to("cuda"), torch.from_numpy(y).to("cuda")

    @torch.compile(mode="reduce-overhead")
    def step(x: Any, t: Any) -> None:
        opt.zero_grad(set_to_none=False)
        lossf(model(x), t).backward()
        opt.step()

    def run() -> None:
        order = torch.randperm(Xt.shape[0], device="cuda")
        full = Xt.shape[0] // batch * batch  # one shape per graph: the short batch dropped
        for s in range(0, full, batch):
            idx = order[s : s + batch]
            step(Xt[idx], yt[idx])

    return run


def sklearn_epoch(X: np.ndarray, y: np.ndarray, batch: int) -> Callable:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(SIZES[1:-1], solver="adam", learning_rate_init=LR, batch_size=batch)
    classes = np.arange(SIZES[-1])
    return lambda: model.partial_fit(X, y, classes=classes)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="BLAS/torch threads (CPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    X, y = _data(args.samples)
    batch = args.batch
    impls: dict[str, Callable] = {"torch loop": torch_loop_epoch(args.device, X, y, batch)}
    if args.device == "cpu":
        impls["xpnet[numpy]"] = xpnet_epoch("numpy", None, X, y, batch)
        impls["xpnet[torch]"] = xpnet_epoch("torch", "cpu", X, y, batch)
        impls["scikit-learn"] = sklearn_epoch(X, y, batch)
    else:
        impls["xpnet[torch-cuda]"] = xpnet_epoch("torch", "cuda", X, y, batch)
        impls["xpnet[torch-cuda] eager"] = xpnet_epoch("torch", "cuda", X, y, batch, False)
        impls["torch.compile loop"] = torch_compiled_epoch(X, y, batch)
        if xpnet.available_backends()["jax"] == "ok":
            impls["xpnet[jax]"] = xpnet_epoch("jax", None, X, y, batch)
        if xpnet.available_backends()["cupy"] == "ok":
            impls["xpnet[cupy]"] = xpnet_epoch("cupy", None, X, y, batch)
    times: dict[str, list[float]] = {name: [] for name in impls}
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning per partial_fit
        for run in impls.values():  # warm-up epoch
            run()
        for _ in range(args.rounds):
            for name, run in impls.items():
                _sync(args.device)
                start = time.perf_counter()
                run()
                _sync(args.device)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ref = medians["torch loop"]
    rows = [
        f"| {name} | {m:.3f} | {min(times[name]):.3f} | {m / ref:.2f} |"
        for name, m in medians.items()
    ]
    table = "\n".join(
        [
            f"One epoch, {args.samples} x 784, 784-256-256-10 ReLU, Adam, batch {batch}, "
            f"float32, {args.device}, {args.threads} threads, median of {args.rounds} "
            "interleaved rounds:",
            "",
            "| implementation | s/epoch (median) | s/epoch (min) | / torch loop |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "fit_e2e" if batch == BATCH else f"fit_e2e-batch{batch}"
    (args.out / f"{name}.md").write_text(table + "\n")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "times": times}
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
