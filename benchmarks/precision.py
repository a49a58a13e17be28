"""Mixed precision's training step against float32, TF32, PyTorch autocast and the floors.

One run on one device times a training step (forward, softmax cross-entropy, backward, SGD)
of one net in: xpnet "32"; xpnet "32" with TF32 products (CUDA only); xpnet "bf16-mixed" and
"16-mixed"; and the same net as torch.nn layers under torch.autocast(bfloat16) with autograd.
The floors are the step's matrix-product FLOPs over the GEMM rate measured in the same run
(float32 and bfloat16). Writes JSON and a Markdown table; checks issue 24's goals on CUDA.

    python benchmarks/precision.py --device cuda                 # 4096-4096-4096-1024, batch 1024
    python benchmarks/precision.py --device cpu --sizes 256,256,256,64 --batch 256
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xpnet
from xpnet.train import step

Step = Callable[[], Any]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_call(fn: Step, device: str, rounds: int, calls: int) -> float:
    """The median over `rounds` of the mean seconds of `calls` calls, after one warm round."""
    times = []
    for r in range(rounds + 1):
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        if r:
            times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def step_flops(sizes: list[int], batch: int) -> int:
    """The matrix products of one step: forward 2*B*n_in*n_out per layer, backward twice
    that but for the first layer's dL/dx."""
    layers = list(itertools.pairwise(sizes))
    forward = sum(2 * batch * i * o for i, o in layers)
    return 3 * forward - 2 * batch * layers[0][0] * layers[0][1]


def gemm_rate(dtype: torch.dtype, device: str, n: int) -> float:
    """FLOP/s of an n x n x n matrix product in `dtype`."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, device, 3, 5)


def xpnet_step(sizes: list[int], batch: int, device: str, precision: str) -> Step:
    rng = np.random.default_rng(0)
    net = xpnet.MLP(sizes, hidden="relu", output="identity", backend="torch", device=device)
    net.set_precision(precision)
    X = xpnet.asarray(rng.normal(size=(batch, sizes[0])), like=net)
    T = xpnet.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)], like=net)
    loss, opt = xpnet.SoftmaxCrossEntropyLoss(), xpnet.SGD(lr=1e-3)
    return lambda: step(net, X, T, loss, opt)


def autocast_step(sizes: list[int], batch: int, device: str) -> Step:
    """The same net in torch.nn under autocast(bfloat16), float32 parameters, autograd."""
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers += [torch.nn.Linear(n_in, n_out)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    X = torch.randn(batch, sizes[0], device=device)
    y = torch.randint(0, sizes[-1], (batch,), device=device)
    kind = "cuda" if device.startswith("cuda") else "cpu"

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(kind, dtype=torch.bfloat16):
            out = model(X)
        torch.nn.functional.cross_entropy(out.float(), y).backward()
        opt.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="4096,4096,4096,1024")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision"))
    args = parser.parse_args()
    sizes, batch, device = [int(s) for s in args.sizes.split(",")], args.batch, args.device
    cuda = device.startswith("cuda")
    flops = step_flops(sizes, batch)

    def timed(fn: Step) -> float:
        return seconds_per_call(fn, device, args.rounds, args.calls)

    times = {
        p: timed(xpnet_step(sizes, batch, device, p)) for p in ("32", "bf16-mixed", "16-mixed")
    }
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        times["32 (TF32)"] = timed(xpnet_step(sizes, batch, device, "32"))
        torch.backends.cuda.matmul.allow_tf32 = False
    times["torch autocast bf16"] = timed(autocast_step(sizes, batch, device))
    n = 8192 if cuda else 1024
    floors = {
        "float32": flops / gemm_rate(torch.float32, device, n),
        "bfloat16": flops / gemm_rate(torch.bfloat16, device, n),
    }
    result = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "sizes": sizes,
        "batch": batch,
        "seconds_per_step": times,
        "floor_seconds": floors,
        "ratios": {
            "bf16-mixed speedup over 32": times["32"] / times["bf16-mixed"],
            "bf16-mixed / bf16 floor": times["bf16-mixed"] / floors["bfloat16"],
            "32 / float32 floor": times["32"] / floors["float32"],
            "bf16-mixed / torch autocast": times["bf16-mixed"] / times["torch autocast bf16"],
        },
    }
    if cuda:  # issue 24's goals for the large step
        r = result["ratios"]
        result["goals"] = {
            "bf16-mixed >= 4x faster than 32": r["bf16-mixed speedup over 32"] >= 4.0,
            "bf16-mixed within 1.3x of the bf16 floor": r["bf16-mixed / bf16 floor"] <= 1.3,
            "bf16-mixed no slower than autocast": r["bf16-mixed / torch autocast"] <= 1.0,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"{result['device']}, torch {torch.__version__}, {'-'.join(map(str, sizes))}, "
        f"batch {batch}",
        "",
        "| step | ms | x bf16 floor |",
        "|---|---:|---:|",
        *(
            f"| {name} | {1e3 * s:.3f} | {s / floors['bfloat16']:.2f} |"
            for name, s in {**times, **{f"floor {k}": v for k, v in floors.items()}}.items()
        ),
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({k: result[k] for k in ("ratios", "goals") if k in result}, indent=2))


if __name__ == "__main__":
    main()
