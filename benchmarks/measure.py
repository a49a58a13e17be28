"""Clocks, peak memory and the hardware floors of the benchmark runner.

A `Lib` bundles what the runner needs of one array library on one device: a clock (wall time
on the CPU, CUDA events on a GPU), a peak-memory probe and the GEMM-rate and copy-bandwidth
measurements the floors are built from."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Step = Callable[[], Any]


class Probe:
    """Peak memory since the probe started, in bytes; `reset()` restarts the peak at the bytes
    in use now. `peak()` is -1 where the library reports its allocations to no tracer."""

    def reset(self) -> None:
        pass

    def peak(self) -> int:
        return -1


@dataclasses.dataclass
class Lib:
    """One array library on one device: how to make arrays, time and measure memory there."""

    name: str  # "numpy", "torch", "torch-cuda", "cupy"
    xp: Any  # the module the classic code calls (numpy, torch, cupy)
    from_host: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    sync: Callable[[], None]
    timed: Callable[[Step, int], float]  # seconds for n back-to-back steps, device work included
    memory: Callable[[], contextlib.AbstractContextManager[Probe]]  # peak bytes since entry
    matmul: Callable[[Any, Any], Any]
    copy: Callable[[Any, Any], None]  # dst <- src


def _wall(step: Step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


class _Tracemalloc(Probe):
    def __init__(self) -> None:
        self.start = tracemalloc.get_traced_memory()[0]

    def reset(self) -> None:
        tracemalloc.reset_peak()

    def peak(self) -> int:
        return tracemalloc.get_traced_memory()[1] - self.start


@contextlib.contextmanager
def _tracemalloc_probe() -> Iterator[Probe]:
    """NumPy reports its buffers to tracemalloc; bytes are counted from the probe's start."""
    tracemalloc.start()
    try:
        yield _Tracemalloc()
    finally:
        tracemalloc.stop()


def numpy_lib() -> Lib:
    return Lib(
        "numpy",
        np,
        np.array,
        np.asarray,
        lambda: None,
        _wall,
        _tracemalloc_probe,
        np.matmul,
        lambda dst, src: np.copyto(dst, src),
    )


def torch_lib(device: str) -> Lib:
    import torch

    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def timed(step: Step, n: int) -> float:
        if not cuda:
            return _wall(step, n)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    class CudaProbe(Probe):
        def __init__(self) -> None:
            torch.cuda.synchronize()
            self.start = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()

        def reset(self) -> None:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

        def peak(self) -> int:
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.start

    @contextlib.contextmanager
    def memory() -> Iterator[Probe]:
        yield CudaProbe() if cuda else Probe()  # torch's CPU allocator reports to no tracer

    return Lib(
        "torch-cuda" if cuda else "torch",
        torch,
        lambda a: torch.tensor(a, device=device),
        lambda a: a.detach().cpu().numpy(),
        sync,
        timed,
        memory,
        torch.matmul,
        lambda dst, src: dst.copy_(src),
    )


def cupy_lib() -> Lib:
    import cupy

    def timed(step: Step, n: int) -> float:
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(n):
            step()
        end.record()
        end.synchronize()
        return cupy.cuda.get_elapsed_time(start, end) / 1e3

    class PoolProbe(cupy.cuda.MemoryHook, Probe):
        """Follows the memory pool's bytes in use and keeps their maximum."""

        name = "xpnet-bench-peak"

        def __init__(self) -> None:
            self.used = self.top = 0

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
            self.used += mem_size
            self.top = max(self.top, self.used)

        def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
            self.used -= mem_size

        def reset(self) -> None:
            cupy.cuda.Device().synchronize()
            self.top = self.used

        def peak(self) -> int:
            cupy.cuda.Device().synchronize()
            return self.top

    @contextlib.contextmanager
    def memory() -> Iterator[Probe]:
        probe = PoolProbe()
        with probe:
            yield probe

    return Lib(
        "cupy",
        cupy,
        cupy.asarray,
        cupy.asnumpy,
        lambda: cupy.cuda.Device().synchronize(),
        timed,
        memory,
        cupy.matmul,
        lambda dst, src: cupy.copyto(dst, src),
    )


def gemm_rate(lib: Lib, n: int, repeats: int = 3) -> float:
    """Best float32 FLOP/s of an n x n x n matrix product in this library."""
    rng = np.random.default_rng(1)
    a = lib.from_host(rng.random((n, n), dtype=np.float32))
    b = lib.from_host(rng.random((n, n), dtype=np.float32))
    lib.matmul(a, b)  # warm-up
    best = min(lib.timed(lambda: lib.matmul(a, b), 1) for _ in range(repeats))
    return 2.0 * n**3 / best


def copy_bandwidth(lib: Lib, nbytes: int, repeats: int = 5) -> float:
    """Best bytes/s of a float32 array copy (read + write), on an array far larger than cache."""
    src = lib.from_host(np.random.default_rng(2).random(nbytes // 4, dtype=np.float32))
    dst = lib.from_host(np.zeros(nbytes // 4, dtype=np.float32))
    lib.copy(dst, src)
    best = min(lib.timed(lambda: lib.copy(dst, src), 1) for _ in range(repeats))
    return 2.0 * nbytes / best


def median_ms(samples: list[float]) -> float:
    return 1e3 * statistics.median(samples)


def matmul_flops(sizes: list[int], batch: int) -> int:
    """FLOPs of one step's matrix products: forward x @ W and backward x.T @ g for every layer,
    g @ W.T for all but the first (backward(gY, input_grad=False))."""
    pairs = list(itertools.pairwise(sizes))
    return sum(2 * batch * i * o * (2 if k == 0 else 3) for k, (i, o) in enumerate(pairs))


def elementwise_bytes(sizes: list[int], batch: int, itemsize: int = 4) -> int:
    """Bytes the step's elementwise work must move at the least (each array read or written
    once): per layer, bias + sigmoid (read z, write y), the backward g * y * (1 - y) (read g
    and y, write g; at the output read y and t), the bias gradient (read g); the SGD update
    reads p and its gradient and writes p."""
    total = 0
    for i, o in itertools.pairwise(sizes):
        act = batch * o
        total += 2 * act + 3 * act + act + 3 * (i * o + o)
    return total * itemsize


def need_bytes(sizes: list[int], batch: int, itemsize: int = 4) -> dict[str, int]:
    """What a step must hold: parameters, their gradients, the cached activations (each
    layer's output) and the optimizer state (none for plain SGD)."""
    params = sum(i * o + o for i, o in itertools.pairwise(sizes))
    return {
        "params": params * itemsize,
        "grads": params * itemsize,
        "activations": batch * sum(sizes[1:]) * itemsize,
        "optimizer": 0,
    }


def machine() -> dict[str, Any]:
    """The CPU model and cores, library versions, the BLAS threadpoolctl sees, the date and the
    OpenBLAS variables that change which kernel runs."""
    import datetime
    import os
    import platform
    import subprocess

    info: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cores": os.cpu_count(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    for lib in ("torch", "cupy"):
        try:
            info[lib] = __import__(lib).__version__
        except ImportError:
            pass
    if "cupy" in info:
        import cupy

        try:
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            info["gpu"] = props["name"].decode()
        except Exception as exc:  # no driver or no device: the runner refuses cupy then
            info["gpu"] = f"none ({type(exc).__name__})"
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed (pip install 'xpnet[bench]')"
    return info


def transposed_gemm(configs: list[Any]) -> list[dict[str, Any]]:
    """The backward products of each configuration in NumPy float32: g @ W.T with W.T a
    transposed view against a C-contiguous copy, and x.T @ g likewise (median seconds)."""
    rng = np.random.default_rng(3)
    rows = []
    for cfg in configs:
        B = cfg.batch
        for n_in, n_out in zip(cfg.sizes[:-1], cfg.sizes[1:], strict=True):
            W = rng.random((n_in, n_out), dtype=np.float32)
            g = rng.random((B, n_out), dtype=np.float32)
            x = rng.random((B, n_in), dtype=np.float32)
            WT, xT = np.ascontiguousarray(W.T), np.ascontiguousarray(x.T)
            n = 3 if B * n_in * n_out > 1e8 else 200
            rows.append(
                {
                    "layer": f"{n_in}->{n_out}, batch {B}",
                    "g @ W.T view": _best(lambda g=g, W=W: g @ W.T, n),
                    "g @ W.T contiguous": _best(lambda g=g, WT=WT: g @ WT, n),
                    "x.T @ g view": _best(lambda x=x, g=g: x.T @ g, n),
                    "x.T @ g contiguous": _best(lambda xT=xT, g=g: xT @ g, n),
                }
            )
    return rows


def _best(fn: Step, n: int) -> float:
    fn()
    return statistics.median(_wall(fn, 1) for _ in range(n))


def step_gemms(lib: Lib, sizes: list[int], batch: int, repeats: int) -> float:
    """Median seconds of one step's matrix products alone, in its shapes (x @ W, x.T @ g and,
    but for the first layer, g @ W.T on the transposed view), on this library: the part of
    the step that is BLAS's, at the rate BLAS reaches on those shapes."""
    rng = np.random.default_rng(4)

    def rand(*shape: int) -> Any:
        return lib.from_host(rng.random(shape, dtype=np.float32))

    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append((rand(batch, n_in), rand(n_in, n_out), rand(batch, n_out), k > 0))

    def products() -> None:
        for x, W, g, input_grad in layers:
            lib.matmul(x, W)
            lib.matmul(x.T, g)
            if input_grad:
                lib.matmul(g, W.T)

    products()
    return statistics.median(lib.timed(products, 1) for _ in range(repeats))
