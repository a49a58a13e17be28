"""The fused CuPy kernels of issues 22 and 23 against the generic path on CuPy and PyTorch's own
layers on CUDA, forward and backward; and the kernel launches of one CuPy MNIST-sized step
with and without them. Needs a GPU with CuPy and torch (benchmarks/gpu_check.sh runs it).

    python benchmarks/layer_kernels.py [--batch 128,1024] [--width 256,1024]

float32; every variant's values are checked against NumPy's generic ops in float64 before it
is timed (cupyx.profiler.benchmark: GPU time, median microseconds). The launch count comes
from torch.profiler's CUDA trace, which sees CuPy's kernels too. Expected for 784-256-256-10
ReLU with softmax cross-entropy and Adam: 34 launches before (the loss alone 17: log_softmax,
the products and sums, then softmax again in backward), 17 after (the loss one row kernel
and one sum, its gradient kept from the forward; each hidden ReLU's backward and its Linear's
bias gradient one kernel, where they were the backward and a column sum)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

try:
    import cupy
    import torch
    from cupyx.profiler import benchmark
except ImportError as error:  # pragma: no cover - GPU machines only
    raise SystemExit(f"layer_kernels.py needs CuPy and PyTorch on a GPU machine: {error}") from None

import xpnet
from xpnet import ops
from xpnet.ops import cupy as fast
from xpnet.ops import generic

F = torch.nn.functional
P = 0.2  # the dropout probability


def _fused_relu_dropout(h: Any, b: Any, u: Any) -> Any:
    return fast.bias_relu_dropout_inplace(h.copy(), b, u, P, cupy)


def _generic_relu_dropout(h: Any, b: Any, u: Any) -> Any:
    y = generic.relu(h + b, cupy)
    return (y, *generic.dropout(y, u, P, cupy))


def _generic_backward_bias(y: Any, g: Any) -> Any:
    dx = generic.relu_backward(y, g, cupy)
    return dx, cupy.sum(dx, axis=0)


def _cases(
    n: int, d: int
) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any], Any]]:
    """name -> (fused, generic on CuPy, torch, float64 reference of the fused's first output)."""
    rng = np.random.default_rng(0)
    host = {k: rng.normal(size=(n, d)) for k in ("x", "g")}
    host["u"] = rng.random((n, d))
    host["b"] = rng.normal(size=d)
    host["T"] = np.eye(d)[rng.integers(0, d, n)]
    c = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in host.items()}
    t = {k: torch.as_tensor(v, dtype=torch.float32, device="cuda") for k, v in host.items()}
    gamma, beta = cupy.ones(d, dtype=cupy.float32), cupy.zeros(d, dtype=cupy.float32)
    _, x_hat, inv_std = fast.layer_norm(c["x"], gamma, beta, 1e-5, cupy)
    ref_ln = generic.layer_norm(host["x"], np.ones(d), np.zeros(d), 1e-5, np)
    y_relu = generic.relu(host["x"] + host["b"], np)
    _, mask = generic.dropout(y_relu, host["u"], P, np)
    tx = t["x"].clone().requires_grad_(True)
    t_ln = F.layer_norm(tx, (d,))
    t_do = F.dropout(F.relu(tx + t["b"]), P)
    t_ce = F.cross_entropy(tx, t["T"])
    cy = generic.relu(c["x"] + c["b"], cupy)
    c_mask = generic.dropout(cy, c["u"], P, cupy)[1]
    return {
        "LayerNorm forward": (
            lambda: fast.layer_norm(c["x"], gamma, beta, 1e-5, cupy),
            lambda: generic.layer_norm(c["x"], gamma, beta, 1e-5, cupy),
            lambda: F.layer_norm(t["x"], (d,)),
            ref_ln[0],
        ),
        "LayerNorm backward": (
            lambda: fast.layer_norm_backward(c["g"], x_hat, inv_std, gamma, cupy),
            lambda: generic.layer_norm_backward(c["g"], x_hat, inv_std, gamma, cupy),
            lambda: torch.autograd.grad(t_ln, tx, t["g"], retain_graph=True),
            generic.layer_norm_backward(host["g"], ref_ln[1], ref_ln[2], np.ones(d), np),
        ),
        "bias+ReLU+Dropout forward": (
            lambda: _fused_relu_dropout(c["x"], c["b"], c["u"]),
            lambda: _generic_relu_dropout(c["x"], c["b"], c["u"]),
            lambda: F.dropout(F.relu(t["x"] + t["b"]), P),
            y_relu,
        ),
        "ReLU+Dropout backward": (
            lambda: fast.relu_dropout_backward(cy, c_mask, c["g"], cupy),
            lambda: generic.relu_backward(cy, c["g"] * c_mask, cupy),
            lambda: torch.autograd.grad(t_do, tx, t["g"], retain_graph=True),
            generic.relu_backward(y_relu, host["g"] * mask, np),
        ),
        "ReLU backward + bias grad": (
            lambda: fast.relu_backward_bias_grad(
                cy, c["g"], None, cupy.empty(d, cupy.float32), cupy
            ),
            lambda: _generic_backward_bias(cy, c["g"]),
            lambda: torch.autograd.grad(F.relu(tx + t["b"]), tx, t["g"]),  # no db: a bound
            generic.relu_backward(y_relu, host["g"], np),
        ),
        "softmax CE value+grad": (
            lambda: fast.softmax_cross_entropy(c["x"], c["T"], cupy)[::-1],
            lambda: generic.softmax_cross_entropy(c["x"], c["T"], cupy)[::-1],
            lambda: torch.autograd.grad(t_ce, tx, retain_graph=True),
            generic.softmax_cross_entropy(host["x"], host["T"], np)[1],
        ),
    }


def _first(result: Any) -> Any:
    return result[0] if isinstance(result, tuple) else result


def _check(name: str, result: Any, want: np.ndarray) -> None:
    got = cupy.asnumpy(_first(result)).astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=name)


def _microseconds(fn: Callable[[], Any]) -> float:
    return float(np.median(benchmark(fn, n_repeat=200, n_warmup=20).gpu_times)) * 1e6


def _launches(fused: bool) -> int:
    """Kernel launches of one CuPy training step of 784-256-256-10 ReLU, softmax CE, Adam;
    without `fused`, the ops this work added are generic's again (and the activations'
    backward with the bias gradient absent, so the layers take the two apart)."""
    net = xpnet.MLP([784, 256, 256, 10], hidden="relu", output="identity", backend="cupy")
    rng = np.random.default_rng(0)
    X = xpnet.asarray(rng.normal(size=(128, 784)), like=net)
    T = xpnet.asarray(np.eye(10)[rng.integers(0, 10, 128)], like=net)
    loss, optimizer = xpnet.SoftmaxCrossEntropyLoss(), xpnet.Adam(lr=1e-3)
    key = net.backend.xp.__name__
    saved = ops.ops_for(net.backend.xp)
    if not fused:
        added = ("softmax_cross_entropy", "layer_norm", "layer_norm_backward", "dropout")
        plain = {name: getattr(generic, name) for name in added}
        kept = {k: f for k, f in vars(saved).items() if not k.endswith("_backward_bias_grad")}
        ops._CHOSEN[key] = SimpleNamespace(**{**kept, **plain})
    try:
        for _ in range(3):  # warm-up: kernels compiled, caches filled
            xpnet.train.step(net, X, T, loss, optimizer)
        cupy.cuda.Device().synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            xpnet.train.step(net, X, T, loss, optimizer)
            cupy.cuda.Device().synchronize()
    finally:
        ops._CHOSEN[key] = saved
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="128,1024")
    parser.add_argument("--width", default="256,1024")
    args = parser.parse_args()
    print(f"{cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, float32, GPU us (median)")
    print("| case | batch x width | fused | generic (CuPy) | torch | generic / fused |")
    print("|---|---|---:|---:|---:|---:|")
    for n in (int(v) for v in args.batch.split(",")):
        for d in (int(v) for v in args.width.split(",")):
            for name, (fused, plain, torch_fn, want) in _cases(n, d).items():
                _check(name + " fused", fused(), want)
                _check(name + " generic", plain(), want)
                times = [_microseconds(fn) for fn in (fused, plain, torch_fn)]
                print(
                    f"| {name} | {n} x {d} | {times[0]:.1f} | {times[1]:.1f} | {times[2]:.1f} "
                    f"| {times[1] / times[0]:.2f} |"
                )
    before, after = _launches(fused=False), _launches(fused=True)
    print(f"kernel launches per CuPy MNIST step (784-256-256-10): before {before}, after {after}")


if __name__ == "__main__":
    main()
