"""JAX: one training step (forward, SSE loss, backward(input_grad=False), SGD or Adam) with
ops/jax.py's jit-compiled ops against ops/generic.py run eagerly, and NumPy's step for scale.

    python benchmarks/jax_ops.py --out benchmarks/results/jax

Median ms per step over --repeats timed runs of --steps steps each (after a warm-up that
compiles), float32, on JAX's default device; the weights of both JAX paths are checked against
each other before timing is trusted."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import xpnet
from xpnet import ops

CONFIGS = {  # name: (sizes, batch)
    "seed": ([2, 2, 1], 4),
    "digits": ([64, 64, 10], 32),
    "mnist": ([784, 256, 10], 128),
}


def _time_steps(backend: str, sizes, batch, make_opt, steps, repeats, fast: bool):
    saved = ops._FAST, dict(ops._CHOSEN)
    if not fast:
        ops._FAST, ops._CHOSEN = (), {}
    try:
        rng = np.random.default_rng(0)
        net = xpnet.MLP(sizes, backend=backend, seed=0)
        X = xpnet.asarray(rng.random((batch, sizes[0])), like=net)
        T = xpnet.asarray((rng.random((batch, sizes[-1])) < 0.5).astype(float), like=net)
        loss, opt = xpnet.SSELoss(), make_opt()

        def run(n):
            for _ in range(n):
                xpnet.train.step(net, X, T, loss, opt)
            for p in net.parameters().values():  # JAX dispatches asynchronously
                getattr(p, "block_until_ready", lambda: None)()

        run(3)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(steps)
            times.append((time.perf_counter() - start) / steps * 1e3)
        return statistics.median(times), {k: xpnet.to_numpy(v) for k, v in net.parameters().items()}
    finally:
        ops._FAST, ops._CHOSEN = saved[0], saved[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/jax"))
    args = parser.parse_args()
    import jax

    optimizers = {"sgd": lambda: xpnet.SGD(0.1), "adam": lambda: xpnet.Adam(0.01)}
    rows, results = [], {"device": str(jax.devices()[0]), "jax": jax.__version__, "rows": []}
    for name, (sizes, batch) in CONFIGS.items():
        for opt_name, make_opt in optimizers.items():
            common = (sizes, batch, make_opt, args.steps, args.repeats)
            jit_ms, jit_w = _time_steps("jax", *common, fast=True)
            gen_ms, gen_w = _time_steps("jax", *common, fast=False)
            np_ms, _ = _time_steps("numpy", *common, fast=True)
            diff = max(float(np.max(np.abs(jit_w[k] - gen_w[k]))) for k in jit_w)
            row = dict(config=name, optimizer=opt_name, jit_ms=jit_ms, generic_ms=gen_ms,
                       numpy_ms=np_ms, speedup=gen_ms / jit_ms, max_weight_diff=diff)  # fmt: skip
            results["rows"].append(row)
            rows.append(
                f"| {name} | {opt_name} | {jit_ms:.3g} | {gen_ms:.3g} | {gen_ms / jit_ms:.2f} "
                f"| {np_ms:.3g} | {diff:.1e} |"
            )
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    header = (
        f"JAX {results['jax']} on {results['device']}, float32, median ms per step\n\n"
        "| config | optimizer | ops/jax.py (jit) ms | generic (eager) ms | generic / jit "
        "| numpy ms | max weight diff |\n|---|---|---|---|---|---|---|\n"
    )
    (args.out / "results.md").write_text(header + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
