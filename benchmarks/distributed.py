"""`mpiexec -n N xpnet train` against one process on a MNIST-shaped synthetic problem.

    python benchmarks/distributed.py [--ranks 2] [--repeats 3]

Wall time of the whole command (start-up, data loading, training, evaluation, writing the
run) for one process with all the cores' BLAS threads and for N ranks (xpnet limits each to
cores / N threads), interleaved `--repeats` times; then, under mpiexec, the time each step
spends in the gradient allreduce against the whole step (measured by wrapping the MPI
communicator that `fit` is given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
SHAPE, CLASSES, HIDDEN, EPOCHS, BATCH = (10_000, 784), 10, "256,256", 2, 32
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_data(path: Path) -> None:
    """MNIST-shaped: 10,000 x 784 in [0, 1], 10 classes from a random linear teacher."""
    rng = np.random.default_rng(0)
    X = rng.random(SHAPE, dtype=np.float32)
    y = np.argmax(X @ rng.normal(size=(SHAPE[1], CLASSES)), axis=1)
    np.savez(path, X=X, y=y)


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds of the command, its training seconds from metrics.json)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - started
    run = max((cwd / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return wall, json.loads((run / "metrics.json").read_text())["seconds"]


def allreduce_share(data: Path) -> None:
    """Run under mpiexec: train as `xpnet train` does, timing the allreduce of each step."""
    import xpnet
    from xpnet.cli import parallel

    comm = parallel.join()
    parallel.limit_threads()

    class Timed:
        def __init__(self, inner):
            self.inner, self.rank, self.size = inner, inner.rank, inner.size
            self.seconds, self.calls = 0.0, 0

        def allreduce_sum(self, a):
            started = time.perf_counter()
            out = self.inner.allreduce_sum(a)
            self.seconds += time.perf_counter() - started
            self.calls += 1
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    timed_comm = Timed(comm)
    with np.load(data) as f:
        X, y = f["X"], f["y"]
    net = xpnet.MLP([SHAPE[1], 256, 256, CLASSES], output="identity", seed=0)
    history = xpnet.fit(
        net,
        X,
        y,
        loss="softmax_ce",
        optimizer=xpnet.Adam(lr=0.01),
        epochs=EPOCHS,
        batch_size=BATCH,
        comm=timed_comm,
    )
    total = sum(history["seconds"])
    if comm.rank == 0:
        steps = timed_comm.calls
        print(
            json.dumps(
                {
                    "steps": steps,
                    "step_ms": 1e3 * total / steps,
                    "allreduce_ms": 1e3 * timed_comm.seconds / steps,
                    "allreduce_share": timed_comm.seconds / total,
                    "parameters": net.parameter_buffer.flat_parameters().size,
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--allreduce", type=Path, help=argparse.SUPPRESS)  # the inner run
    args = parser.parse_args()
    if args.allreduce is not None:
        return allreduce_share(args.allreduce)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "mnist_shaped.npz"
        make_data(data)
        train = ["train", "--data", str(data), "--hidden", HIDDEN, "--epochs", str(EPOCHS)]
        one = [str(BIN / "xpnet"), *train]
        many = [str(BIN / "mpiexec"), "-n", str(args.ranks), str(BIN / "xpnet"), *train]
        results: dict[str, list[tuple[float, float]]] = {"one": [], "mpi": []}
        for _ in range(args.repeats):  # interleaved, so that load hits both alike
            results["one"].append(timed(one, work))
            results["mpi"].append(timed(many, work))
        inner = [str(BIN / "mpiexec"), "-n", str(args.ranks), sys.executable, __file__]
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        done = subprocess.run(
            [*inner, "--allreduce", str(data)], check=True, capture_output=True, text=True, env=env
        )
    share = json.loads(done.stdout)
    summary = {
        name: {
            "wall_s": [round(w, 2) for w, _ in runs],
            "train_s": [round(t, 2) for _, t in runs],
            "median_wall_s": statistics.median(w for w, _ in runs),
            "median_train_s": statistics.median(t for _, t in runs),
        }
        for name, runs in results.items()
    }
    one_s, mpi_s = summary["one"], summary["mpi"]
    summary["ratio_wall"] = mpi_s["median_wall_s"] / one_s["median_wall_s"]
    summary["ratio_train"] = mpi_s["median_train_s"] / one_s["median_train_s"]
    summary["allreduce"] = share
    summary["cores"] = os.cpu_count()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
