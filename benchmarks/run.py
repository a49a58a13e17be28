"""Time one xpnet training step against the classic NumPy step, PyTorch and the hardware floor.

    python benchmarks/run.py --backends numpy,torch,cupy --out DIR

For each configuration (seed 2-3-1 batch 1, digits 64-128-10 batch 64, mnist 784-256-256-10
batch 256, large 4096-4096-4096-1024 batch 1024) and each library, every implementation starts
from the same float32 weights and batch, is checked against a float64 reference step, warmed
up, then timed in interleaved chunks (median ms per step); a second pass measures its peak
memory during a step. Writes DIR/results.json and DIR/results.md and prints the tables."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import measure
import numpy as np
import report
from steps import BUILDERS, Impl, classic_step

import xpnet


@dataclasses.dataclass(frozen=True)
class Config:
    sizes: list[int]
    batch: int
    warmup: int  # steps before timing
    chunks: int  # timed chunks per implementation (the median is over these)
    per_chunk: int  # steps per chunk


CONFIGS = {
    "seed": Config([2, 3, 1], 1, 300, 40, 100),
    "digits": Config([64, 128, 10], 64, 100, 40, 25),
    "mnist": Config([784, 256, 256, 10], 256, 10, 25, 4),
    "large": Config([4096, 4096, 4096, 1024], 1024, 1, 5, 1),
}

# implementations per library; "xpnet" first, the others are what it is compared with
GROUPS = {
    "numpy": ["xpnet", "classic"],
    "torch": ["xpnet", "manual", "autograd"],
    "torch-cuda": ["xpnet", "xpnet+graph", "manual", "autograd"],
    "cupy": ["xpnet", "classic"],
}
LR = 0.1


def _libs(backends: list[str]) -> list[measure.Lib]:
    """The libraries to run, torch on the GPU too when it has one; a clear error when a
    requested one is missing."""
    libs = []
    status = xpnet.available_backends()
    for name in backends:
        if name not in ("numpy", "torch", "cupy"):
            sys.exit(f"unknown backend {name!r}: use numpy, torch, cupy (comma-separated)")
        if status[name] != "ok":
            sys.exit(
                f"backend {name!r} is not usable here: {status[name]}; drop it from --backends"
            )
        if name == "numpy":
            libs.append(measure.numpy_lib())
        elif name == "cupy":
            libs.append(measure.cupy_lib())
        else:
            import torch

            libs.append(measure.torch_lib("cpu"))
            if torch.cuda.is_available():
                libs.append(measure.torch_lib("cuda"))
    return libs


def _data(cfg: Config) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A float32 batch (inputs in [0, 1), 0/1 targets) and the initial weights of xpnet's seed."""
    rng = np.random.default_rng(0)
    X = rng.random((cfg.batch, cfg.sizes[0]), dtype=np.float32)
    T = (rng.random((cfg.batch, cfg.sizes[-1])) < 0.5).astype(np.float32)
    net = xpnet.MLP(cfg.sizes, backend="numpy", dtype="float32", seed=0)
    return X, T, [np.array(a) for a in net.state_dict().values()]


def _reference(X: np.ndarray, T: np.ndarray, init: list[np.ndarray], steps: int, lr: float):
    """The parameters after 1..steps classic steps in float64 (ref[k] after k + 1 steps)."""
    Ws = [a.astype(np.float64) for a in init[0::2]]
    bs = [a.astype(np.float64) for a in init[1::2]]
    after = []
    for _ in range(steps):
        classic_step(np, Ws, bs, X.astype(np.float64), T.astype(np.float64), lr)
        after.append([a.copy() for pair in zip(Ws, bs, strict=True) for a in pair])
    return after


def _check(name: str, got: list[np.ndarray], want: list[np.ndarray], init: list[np.ndarray]):
    """Largest error of the updated parameters relative to the size of the update (plus a few
    float32 ulps of the weights); raise when an implementation computes something else."""
    worst = 0.0
    for g, w, p0 in zip(got, want, init, strict=True):
        scale = np.max(np.abs(w - p0)) + 8 * np.finfo(np.float32).eps * np.max(np.abs(p0))
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w)) / scale))
    if not worst <= 1e-2:
        raise SystemExit(
            f"{name}: parameters after one step differ from the float64 reference "
            f"by {worst:.3g} of the update; not timing a wrong step"
        )
    return worst


def _run_group(lib: measure.Lib, cfg: Config, X, T, init, ref, lr: float) -> dict[str, Any]:
    x, t = lib.from_host(X), lib.from_host(T)
    names = GROUPS[lib.name]

    def build(name: str) -> Impl:
        return BUILDERS[name](lib, init, x, t, lr)

    impls: dict[str, Impl] = {}
    out: dict[str, Any] = {}
    for name in names:
        impl = impls[name] = build(name)
        impl.step()
        want = ref[impl.steps_taken]
        out[name] = {"error": _check(f"{lib.name}/{name}", impl.params(), want, init)}
    for impl in impls.values():
        for _ in range(cfg.warmup):
            impl.step()
    lib.sync()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(cfg.chunks):  # interleaved, so drift of the machine hits all alike
        for name, impl in impls.items():
            samples[name].append(lib.timed(impl.step, cfg.per_chunk) / cfg.per_chunk)
    impls.clear()
    gc.collect()
    for name in names:
        out[name]["ms"] = measure.median_ms(samples[name])
        out[name]["min_ms"] = 1e3 * min(samples[name])
        out[name]["peak_bytes"] = _peak(lib, lambda n=name: build(n))
    return out


def _peak(lib: measure.Lib, build: Callable[[], Impl]) -> int:
    """Peak bytes during one step (after one warm-up step), counting everything the
    implementation holds: its parameters, gradients, caches and temporaries."""
    with lib.memory() as probe:
        impl = build()
        impl.step()
        lib.sync()
        probe.reset()
        impl.step()
        lib.sync()
        return probe.peak()


def _floors(lib: measure.Lib, before: dict[str, float] | None = None) -> dict[str, float]:
    """The best GEMM rate and copy bandwidth seen (other load on the machine only lowers a
    reading, so the run measures them before and after the configurations and keeps the
    higher)."""
    gpu = lib.name in ("cupy", "torch-cuda")
    now = {
        "gemm_flops_per_s": measure.gemm_rate(lib, 8192 if gpu else 2048, repeats=8),
        "copy_bytes_per_s": measure.copy_bandwidth(lib, (1 << 30) if gpu else (1 << 28), 10),
    }
    return {k: max(v, (before or {}).get(k, 0.0)) for k, v in now.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="numpy,torch", help="numpy,torch,cupy")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke test")
    args = parser.parse_args(argv)
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}: use some of {', '.join(CONFIGS)}")
    libs = _libs(args.backends.split(","))
    result: dict[str, Any] = {"machine": measure.machine(), "lr": LR, "floors": {}, "configs": {}}
    for lib in libs:
        result["floors"][lib.name] = _floors(lib)
        print(f"{lib.name}: floors {result['floors'][lib.name]}", file=sys.stderr)
    if "numpy" in args.backends.split(","):
        result["transposed_gemm"] = measure.transposed_gemm([CONFIGS[c] for c in CONFIGS])
    for cname in args.configs.split(","):
        cfg = CONFIGS[cname]
        if args.quick:
            cfg = dataclasses.replace(cfg, warmup=min(cfg.warmup, 3), chunks=3, per_chunk=1)
        X, T, init = _data(cfg)
        ref = _reference(X, T, init, 3, LR / cfg.batch)
        entry: dict[str, Any] = {
            "sizes": cfg.sizes,
            "batch": cfg.batch,
            "matmul_flops": measure.matmul_flops(cfg.sizes, cfg.batch),
            "elementwise_bytes": measure.elementwise_bytes(cfg.sizes, cfg.batch),
            "need_bytes": measure.need_bytes(cfg.sizes, cfg.batch),
            "libs": {},
            "gemms_ms": {},
        }
        for lib in libs:
            entry["libs"][lib.name] = _run_group(lib, cfg, X, T, init, ref, LR / cfg.batch)
            seconds = measure.step_gemms(lib, cfg.sizes, cfg.batch, max(3, cfg.chunks))
            entry["gemms_ms"][lib.name] = 1e3 * seconds
            print(f"{cname} {lib.name}: {json.dumps(entry['libs'][lib.name])}", file=sys.stderr)
        result["configs"][cname] = entry
    for lib in libs:
        result["floors"][lib.name] = _floors(lib, result["floors"][lib.name])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1))
    text = report.markdown(result)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
