"""PyTorch versions of the ops in `generic`: one fused kernel where PyTorch has one.

`torch.sigmoid`, `silu`, `softplus`, `leaky_relu`, `torch.special.erf`/`erfc` (GELU is
generic's formula around erfc), the `aten` backward kernels PyTorch's own autograd calls,
`addmm` for the bias add, and the in-place `add_`/`addcmul_`/`addcdiv_` updates of
`torch.optim`. Each returns what its generic twin returns, to rounding (tested against it); an
`_inplace` op may overwrite its input, which its caller promises not to read again.

For small nets on a GPU, where kernel launches dominate, `capture(step, net, optimizer)`
records a whole training step in a CUDA graph and returns a function that replays it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import torch

from . import generic
from .generic import AdamScalars, seed_of

__all__ = [
    "GraphedEpochs",
    "adam_update",
    "capture",
    "compile_epoch",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_inplace",
    "linear",
    "linear_backward",
    "linear_backward_into",
    "momentum_update",
    "relu_backward",
    "relu_inplace",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_inplace",
    "silu",
    "silu_backward",
    "softplus",
    "softplus_backward",
    "sse",
    "tanh_backward",
    "tanh_inplace",
    "uniform_source",
]

Array = Any
_aten = torch.ops.aten


def sigmoid(x: Array, xp: ModuleType) -> Array:
    """PyTorch's sigmoid kernel: no overflow; below the smallest normal number it may give 0
    where the split form gives a subnormal."""
    return torch.sigmoid(x)


def sigmoid_inplace(x: Array, xp: ModuleType) -> Array:
    return x.sigmoid_()


def sigmoid_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * (1 - y) * y in one kernel (the one autograd uses)."""
    if grad.shape != y.shape or grad.dtype != y.dtype:
        return grad * y * (1.0 - y)
    return _aten.sigmoid_backward(grad, y)


def tanh_inplace(x: Array, xp: ModuleType) -> Array:
    return x.tanh_()


def tanh_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad * (1 - y**2) in one kernel."""
    if grad.shape != y.shape or grad.dtype != y.dtype:
        return grad * (1.0 - y * y)
    return _aten.tanh_backward(grad, y)


def relu_inplace(x: Array, xp: ModuleType) -> Array:
    return x.relu_()


def relu_backward(y: Array, grad: Array, xp: ModuleType) -> Array:
    """grad where y > 0, else 0, in one kernel (autograd's)."""
    if grad.shape != y.shape or grad.dtype != y.dtype:
        return torch.where(y > 0, grad, 0.0)
    return _aten.threshold_backward(grad, y, 0)


def _same(a: Array, b: Array) -> bool:
    """One shape and dtype: what autograd's backward kernels take (else generic's formula)."""
    return bool(a.shape == b.shape and a.dtype == b.dtype)


def leaky_relu(x: Array, xp: ModuleType, *, slope: float) -> Array:
    return torch.nn.functional.leaky_relu(x, slope)


def leaky_relu_inplace(x: Array, xp: ModuleType, *, slope: float) -> Array:
    return torch.nn.functional.leaky_relu_(x, slope)


def leaky_relu_backward(t: Array, grad: Array, xp: ModuleType, *, slope: float) -> Array:
    """grad where t > 0, else slope * grad, in autograd's kernel (told t is the input: the
    same formula, and no refusal of a negative slope)."""
    if not _same(t, grad):
        return generic.leaky_relu_backward(t, grad, xp, slope=slope)
    return _aten.leaky_relu_backward(grad, t, slope, False)


def silu(x: Array, xp: ModuleType) -> Array:
    return torch.nn.functional.silu(x)


def silu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    if not _same(x, grad):
        return generic.silu_backward(x, grad, xp)
    return _aten.silu_backward(grad, x)


def softplus(x: Array, xp: ModuleType) -> Array:
    """torch's softplus with generic's beta = 1 and threshold = 20."""
    return torch.nn.functional.softplus(x)


def softplus_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    if not _same(x, grad):
        return generic.softplus_backward(x, grad, xp)
    return _aten.softplus_backward(grad, x, 1.0, 20.0)


def erf(x: Array, xp: ModuleType) -> Array:
    return torch.special.erf(x)


def erfc(x: Array, xp: ModuleType) -> Array:
    return torch.special.erfc(x)


_SQRT_HALF = math.sqrt(0.5)


def _normal_cdf(x: Array) -> Array:
    """Phi(x) = erfc(-x / sqrt(2)) / 2, as generic.gelu takes it (torch's own gelu kernels
    take 1 + erf(x / sqrt(2)), which loses the lower tail)."""
    return torch.special.erfc(x * -_SQRT_HALF).mul_(0.5)


def gelu(x: Array, xp: ModuleType) -> Array:
    return generic.gelu_from_cdf(x, _normal_cdf(x))


def gelu_backward(x: Array, grad: Array, xp: ModuleType) -> Array:
    return generic.gelu_backward_from_cdf(x, _normal_cdf(x), grad, xp)


def linear(x: Array, W: Array, b: Array | None, xp: ModuleType) -> Array:
    """x @ W + b in one addmm."""
    return x @ W if b is None else torch.addmm(b, x, W)


def linear_backward(
    x: Array, grad: Array, W: Array, bias: bool, input_grad: bool, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """generic.linear_backward with torch's own sum (no compat wrapper)."""
    return x.T @ grad, grad.sum(0) if bias else None, grad @ W.T if input_grad else None


def linear_backward_into(
    x: Array,
    grad: Array,
    W: Array,
    dW: Array,
    db: Array | None,
    input_grad: bool,
    xp: ModuleType,
) -> Array | None:
    """linear_backward with dL/dW and dL/db written into dW and db by `out=`."""
    torch.matmul(x.T, grad, out=dW)
    if db is not None:
        torch.sum(grad, 0, out=db)
    return grad @ W.T if input_grad else None


def sse(Y: Array, T: Array, xp: ModuleType) -> tuple[Array, Array]:
    """(0.5 * sum((Y - T)**2), Y - T): one subtraction and one dot product."""
    D = Y - T
    flat = D.reshape(-1)
    return 0.5 * torch.dot(flat, flat), D


def sgd_update(p: Array, g: Array, *, lr: Any, xp: ModuleType) -> Array:
    """In place; `lr` a Python float (torch's fused `alpha=`) or a 0-d tensor (a graphed step's
    number, refilled before each replay)."""
    return p.sub_(g * lr) if isinstance(lr, torch.Tensor) else p.add_(g, alpha=-lr)


def momentum_update(
    p: Array, g: Array, v: Array, *, lr: Any, momentum: float, xp: ModuleType
) -> tuple[Array, Array]:
    v.mul_(momentum).add_(g)
    return sgd_update(p, v, lr=lr, xp=xp), v


def adam_update(
    p: Array, g: Array, m: Array, v: Array, scalars: AdamScalars, *, xp: ModuleType
) -> tuple[Array, Array, Array]:
    """torch.optim.Adam's single-tensor update, in place; with the scalars as 0-d tensors (a
    graphed step's), the same arithmetic with tensor operands."""
    s = scalars
    if isinstance(s.step, torch.Tensor):
        m.mul_(s.beta1).add_(g * s.one_minus_beta1)
        v.mul_(s.beta2).add_(g * g * s.one_minus_beta2)
        denom = v.sqrt().mul_(s.inv_correction2).add_(s.eps)
        return p.sub_(m / denom * s.step), m, v
    m.mul_(s.beta1).add_(g, alpha=s.one_minus_beta1)
    v.mul_(s.beta2).addcmul_(g, g, value=s.one_minus_beta2)
    denom = v.sqrt().mul_(s.inv_correction2).add_(s.eps)
    p.addcdiv_(m, denom, value=-s.step)
    return p, m, v


class _Replay:
    """A captured step: calling it replays the graph and returns the captured result."""

    def __init__(self, graph: Any, result: Any) -> None:
        self.graph, self.result = graph, result  # the graph keeps its memory pool alive

    def __call__(self) -> Any:
        self.graph.replay()
        return self.result


def capture(step: Callable[[], Any], net: Any, optimizer: Any) -> Callable[[], Any]:
    """Record `step` (a whole training step of `net` on fixed CUDA tensors, updating with
    `optimizer`) in a CUDA graph; return a function that replays it and returns what `step`
    returned (its tensors refilled).

    `step` runs twice for real first, on a side stream as PyTorch's graph recipe asks, so
    everything it keeps (gradients, optimizer state) exists before the capture; the graph's
    temporaries come from a memory pool of its own. Feed new data by copying into the tensors
    `step` reads (`x.copy_(batch)`). A graph replays the Python numbers of the step it
    recorded, so an optimizer whose numbers change per step (Adam's bias corrections, a
    learning-rate schedule) is refused (`optimizer.check_capturable`), as is a net off the
    GPU, whose step a graph would not record at all."""
    device = net.backend.device
    if getattr(device, "type", None) != "cuda":
        raise ValueError(
            f"capture records CUDA work, and this net is on {device}: build it with "
            "backend='torch', device='cuda' (CuPy cannot capture the cuBLAS products)"
        )
    optimizer.check_capturable()
    with torch.cuda.device(device):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()
            step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            result = step()
    return _Replay(graph, result)


def uniform_source(
    entropy: Sequence[int], like: Array, xp: ModuleType
) -> Callable[[tuple[int, ...]], Array]:
    """generic.uniform_source drawn on like's device by a torch.Generator seeded from
    `entropy` (no host round trip on a GPU)."""
    generator = torch.Generator(device=like.device)
    generator.manual_seed(seed_of(entropy))

    def draw(shape: tuple[int, ...]) -> Array:
        return torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)

    return draw


class GraphedEpochs:
    """An epoch's full batches with each training step replayed from one CUDA graph: what
    `compile_epoch` gives for CUDA tensors. Called as `run(P, state, X, T, numbers, batch)`
    (JAX's `compile_epoch` signature), it copies the epoch's optimizer numbers (precomputed on
    the host, along a leading axis; the step picks its row on the device) into fixed tensors
    once, then each batch in turn, and replays the graph, which runs `step(P, state, Xb, Tb,
    numbers)` in place and adds the batch's loss and correct count to totals on the device:
    three launches a step, no host read. The first `WARMUP` steps run eagerly on a side stream
    (CUDA's libraries make their workspaces there), the next is recorded; a new batch size,
    step count or new parameter or state tensors record anew. With `capture=False` every step
    runs eagerly on the same fixed tensors, the path the CPU tests check."""

    WARMUP = 3

    def __init__(
        self,
        step: Callable[..., tuple[Array, dict[str, Array], Array, Array]],
        score: Callable[[Array, Array], Array] | None,
        capture: bool = True,
    ) -> None:
        self._step, self._score, self._capture = step, score, capture
        self._key: tuple[Any, ...] | None = None
        self._graph: Any = None

    def __call__(
        self, P: Array, state: dict[str, Array], X: Array, T: Array, numbers: Any, batch: int
    ) -> tuple[Array, dict[str, Array], Array, Array]:
        shapes = generic.tree_map(lambda a: a.shape, numbers)
        key = (batch, X.shape[1:], T.shape[1:], X.dtype, shapes, P.data_ptr())
        key += tuple((name, a.data_ptr()) for name, a in sorted(state.items()))
        if key != self._key:
            self._prepare(key, P, X, T, numbers, batch)
        generic.tree_map(torch.Tensor.copy_, self._numbers, numbers)
        self._total.zero_()
        self._correct.zero_()
        for i in range(X.shape[0] // batch):
            self._X.copy_(X[i * batch : (i + 1) * batch])
            self._T.copy_(T[i * batch : (i + 1) * batch])
            if self._graph is not None:
                self._graph.replay()
            elif self._capture and self._eager >= self.WARMUP:
                self._record(P, state)
            else:
                self._eagerly(P, state)
        return P, state, self._total.clone(), self._correct.clone()

    def _prepare(
        self, key: tuple[Any, ...], P: Array, X: Array, T: Array, numbers: Any, batch: int
    ) -> None:
        """Fixed tensors for this shape and these parameters; no graph yet."""
        self._key, self._graph, self._eager = key, None, 0
        self._X = torch.empty((batch, *X.shape[1:]), dtype=X.dtype, device=X.device)
        self._T = torch.empty((batch, *T.shape[1:]), dtype=T.dtype, device=T.device)
        self._numbers = generic.tree_map(torch.empty_like, numbers)
        self._total = torch.zeros((), dtype=P.dtype, device=P.device)
        self._correct = torch.zeros((), dtype=torch.int64, device=P.device)
        self._batch = batch

    def _body(self, P: Array, state: dict[str, Array]) -> None:
        """One step on the fixed tensors, in place, its loss and hits added to the totals."""
        new_P, new_state, value, Y = self._step(P, state, self._X, self._T, self._numbers)
        if new_P is not P or any(new_state[k] is not a for k, a in state.items()):
            raise RuntimeError("a graphed step must update its parameters and state in place")
        self._total.add_(value * self._batch)
        if self._score is not None:
            self._correct.add_(self._score(Y, self._T))

    def _eagerly(self, P: Array, state: dict[str, Array]) -> None:
        if not self._capture:
            self._body(P, state)
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self._body(P, state)
        torch.cuda.current_stream().wait_stream(side)
        self._eager += 1

    def _record(self, P: Array, state: dict[str, Array]) -> None:
        """Record this step's work in a graph (recording runs nothing), then replay it."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body(P, state)
        self._graph = graph
        graph.replay()


def compile_epoch(
    step: Callable[..., tuple[Array, dict[str, Array], Array, Array]],
    score: Callable[[Array, Array], Array] | None,
    like: Array,
) -> GraphedEpochs | None:
    """Graphed epochs for CUDA tensors like `like`; None on the CPU, where a graph records
    nothing and the eager step is the fast one."""
    return GraphedEpochs(step, score) if like.device.type == "cuda" else None
