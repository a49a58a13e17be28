"""Can CuPy's training step be one CUDA graph? Issue 23's route finder, run on a GPU machine.

CuPy (13.x, 14.2 seen) refuses cuBLAS while a stream captures ("calling cuBLAS API during
stream capture is currently unsupported", CuPy issue 6290), so a CuPy step of plain `@`
cannot be graphed. The routes this script measures on one MNIST-sized step (784-256-256-10
ReLU, softmax cross-entropy, Adam with its step counter on the device, batch 128 by default,
float32), interleaved in one process:

  eager     the step as CuPy launches it, one kernel (or cuBLAS call) at a time;
  cupy-@    the same step captured with `cupy.cuda.Stream.begin_capture`: expected to be
            refused; the refusal is printed;
  nvmath    the eight products through nvmath-python's stateful cuBLASLt `Matmul`
            (planned once, `inplace=True` into fixed buffers), the rest CuPy kernels, the whole
            step captured into one graph and replayed;
  cutensor  the products through `cupyx.cutensor` (which CuPy allows in a capture), where the
            cuTENSOR library is installed.

Each captured route is checked first: five replays from one state equal five eager steps (to
1e-5 relative, float32). Then the seconds per step (host and GPU, `cupyx.profiler.benchmark`)
and each route's speed against eager. On a CPU machine it says what it needs and exits 2.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable
from typing import Any

SIZES = (784, 256, 256, 10)
ADAM = (1e-3, 0.9, 0.999, 1e-8)  # lr, beta1, beta2, eps: torch.optim.Adam's defaults


def _need_gpu() -> Any:
    try:
        import cupy
        import cupyx.profiler

        cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no CuPy, or no GPU behind it
        sys.exit(f"cupy_capture.py needs CuPy and an NVIDIA GPU ({type(error).__name__}: {error})")
    return cupy, cupyx.profiler


class Step:
    """One training step of the MLP on a fixed batch, parameters and Adam's state in flat
    buffers (as xpnet keeps them), every array it writes allocated here, so a graph that
    captured it stays valid."""

    def __init__(self, cupy: Any, batch: int, matmul: Callable[..., Any]) -> None:
        self.cp = cp = cupy
        rng = cp.random.default_rng(0)
        shapes = [s for a, b in itertools.pairwise(SIZES) for s in ((a, b), (b,))]
        sizes = [math.prod(s) for s in shapes]
        offsets = [sum(sizes[:k]) for k in range(len(sizes) + 1)]
        self.P = cp.zeros(offsets[-1], cp.float32)
        for k in range(0, len(shapes), 2):  # Glorot-uniform weights, zero biases
            fan_in, fan_out = shapes[k]
            bound = (6.0 / (fan_in + fan_out)) ** 0.5
            draw = rng.random(sizes[k], dtype=cp.float32)
            self.P[offsets[k] : offsets[k + 1]] = (2 * draw - 1) * bound
        self.G, self.m, self.v = (cp.zeros_like(self.P) for _ in range(3))
        self.t = cp.zeros((), cp.float32)  # Adam's step counter, on the device

        def views(flat: Any) -> list[Any]:
            return [
                flat[o : o + n].reshape(s)
                for o, n, s in zip(offsets[:-1], sizes, shapes, strict=True)
            ]

        self.W, self.dW = views(self.P)[0::2], views(self.G)[0::2]
        self.b, self.db = views(self.P)[1::2], views(self.G)[1::2]
        self.X = rng.standard_normal((batch, SIZES[0]), dtype=cp.float32)
        labels = rng.integers(0, SIZES[-1], batch)
        self.T = cp.eye(SIZES[-1], dtype=cp.float32)[labels]
        widths = SIZES[1:]
        self.Z = [cp.empty((batch, w), cp.float32) for w in widths]  # products, then outputs
        self.D = [cp.empty((batch, w), cp.float32) for w in widths]  # dL/d(pre-activation)
        self.H = [cp.empty((batch, w), cp.float32) for w in widths[:-1]]  # dL/d(output)
        self.loss = cp.zeros((), cp.float32)
        self.matmul = matmul
        self._kernels(cp)

    def _kernels(self, cp: Any) -> None:
        self.bias_relu = cp.ElementwiseKernel(
            "T b", "T y", "T x = y + b; y = x > T(0) ? x : T(0)", "probe_bias_relu"
        )
        self.relu_back = cp.ElementwiseKernel(
            "T y, T g", "T d", "d = y > T(0) ? g : T(0)", "probe_relu_back"
        )
        lr, b1, b2, eps = ADAM
        self.adam = cp.ElementwiseKernel(
            "T g, raw T t",
            "T p, T m, T v",
            f"""
            T n = t[0];
            m = T({b1}) * m + T({1 - b1}) * g;
            v = T({b2}) * v + T({1 - b2}) * (g * g);
            T c1 = T(1) - pow(T({b1}), n), c2 = T(1) - pow(T({b2}), n);
            p = p - T({lr}) / c1 * m / (sqrt(v) / sqrt(c2) + T({eps}));
            """,
            "probe_adam",
        )

    def __call__(self) -> None:
        cp, Z, D, H, W, b = self.cp, self.Z, self.D, self.H, self.W, self.b
        x = self.X
        for k in range(3):
            self.matmul(x, W[k], Z[k])
            if k < 2:
                self.bias_relu(b[k], Z[k])
                x = Z[k]
            else:
                Z[k] += b[k]
        logits = Z[2]  # softmax cross-entropy: dL/dlogits = (softmax - T) / n
        e = cp.exp(logits - logits.max(axis=1, keepdims=True))
        cp.divide(e, e.sum(axis=1, keepdims=True), out=D[2])
        D[2] -= self.T
        D[2] *= 1.0 / logits.shape[0]
        for k in (2, 1, 0):
            self.matmul((Z[k - 1] if k else self.X).T, D[k], self.dW[k])
            cp.sum(D[k], axis=0, out=self.db[k])
            if k:
                self.matmul(D[k], W[k].T, H[k - 1])
                self.relu_back(Z[k - 1], H[k - 1], D[k - 1])
        self.t += 1
        self.adam(self.G, self.t, self.P, self.m, self.v)

    def state(self) -> list[Any]:
        return [a.copy() for a in (self.P, self.m, self.v, self.t)]

    def restore(self, state: list[Any]) -> None:
        for a, saved in zip((self.P, self.m, self.v, self.t), state, strict=True):
            a[...] = saved


def cupy_matmul(cp: Any) -> Callable[..., Any]:
    def matmul(a: Any, b: Any, out: Any) -> None:
        cp.matmul(a, b, out=out)

    return matmul


def nvmath_matmul(cp: Any) -> Callable[..., Any]:
    """Products through nvmath-python's stateful Matmul, one planned object per call site
    (keyed by the operands' addresses), writing into `out` in place."""
    from nvmath.linalg.advanced import Matmul, MatmulOptions

    plans: dict[tuple[int, int, int], Any] = {}

    def matmul(a: Any, b: Any, out: Any) -> None:
        key = (a.data.ptr, b.data.ptr, out.data.ptr)
        plan = plans.get(key)
        if plan is None:
            plan = Matmul(a, b, c=out, beta=0.0, options=MatmulOptions(inplace=True))
            plan.plan()
            plans[key] = plan
        plan.execute(stream=cp.cuda.get_current_stream())

    return matmul


def cutensor_matmul(cp: Any) -> Callable[..., Any]:
    from cupyx import cutensor

    def matmul(a: Any, b: Any, out: Any) -> None:
        cutensor.contraction(1.0, a, "ik", b, "kj", 0.0, out, "ij")

    return matmul


def graphed(cp: Any, step: Step) -> Callable[[], None]:
    """The step captured once on a non-blocking stream; returns its replay."""
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        step()  # warm: plans, kernels compiled, the memory pool holding every size
        stream.synchronize()
        stream.begin_capture()
        try:
            step()
        finally:
            graph = stream.end_capture()

    def replay() -> None:  # on the current stream, where the profiler's events are
        graph.launch(stream=cp.cuda.get_current_stream())

    return replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    cp, profiler = _need_gpu()
    print(
        f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, cupy {cp.__version__}"
    )
    routes = {"eager": cupy_matmul, "nvmath": nvmath_matmul, "cutensor": cutensor_matmul}
    rows = []
    eager_step = Step(cp, args.batch, cupy_matmul(cp))
    start = eager_step.state()
    for _ in range(5):
        eager_step()
    expected = eager_step.P.copy()
    if not bool(cp.isfinite(expected).all()) or bool((expected == start[0]).all()):
        sys.exit("the eager step did not train (non-finite or unchanged weights)")
    eager_step.restore(start)
    timings = {"eager": eager_step}
    try:  # plain CuPy products under capture: the refusal this script routes around
        graphed(cp, Step(cp, args.batch, cupy_matmul(cp)))
        print("cupy-@: captured (CuPy now allows cuBLAS in a capture)")
    except Exception as error:
        print(f"cupy-@: refused: {type(error).__name__}: {error}")
    for name in ("nvmath", "cutensor"):
        try:
            step = Step(cp, args.batch, routes[name](cp))
            step.restore(start)
            replay = graphed(cp, step)
            step.restore(start)
            for _ in range(5):
                replay()
            cp.cuda.Device().synchronize()
            diff = float(cp.abs(step.P - expected).max() / cp.abs(expected).max())
            print(f"{name}: captured; 5 replays against 5 eager steps: max rel diff {diff:.2e}")
            if not diff <= 1e-5:  # NaN included
                print(f"{name}: WRONG: the replays do not equal the eager steps")
                continue
            timings[name] = replay
        except Exception as error:
            print(f"{name}: unavailable: {type(error).__name__}: {error}")
    for name, run in timings.items():  # interleaved rounds in one process
        result = profiler.benchmark(run, n_repeat=args.repeat, n_warmup=20)
        host, gpu = float(result.cpu_times.mean()), float(result.gpu_times.mean())
        rows.append((name, host, gpu))
    base = max(rows[0][1], rows[0][2])
    print(f"\nbatch {args.batch}, {args.repeat} steps each; ms per step")
    print(f"{'route':10} {'host ms':>9} {'GPU ms':>9} {'x eager':>8}")
    for name, host, gpu in rows:
        print(f"{name:10} {host * 1e3:9.4f} {gpu * 1e3:9.4f} {base / max(host, gpu):8.2f}")


if __name__ == "__main__":
    main()
