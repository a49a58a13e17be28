"""The training steps the runner times, each built from the same initial weights and batch.

One step is forward, the SSE loss, backward (no dL/dX for the input layer) and a plain SGD
update, in float32, of a sigmoid MLP (sigmoid hidden layers and output)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from measure import Lib

import xpnet

Array = Any


@dataclasses.dataclass
class Impl:
    """A ready step and a way to read its parameters back (host arrays W1, b1, W2, b2, ...)."""

    step: Callable[[], Any]
    params: Callable[[], list[np.ndarray]]
    steps_taken: int = 0  # updates already made when built (a CUDA-graph capture makes two)


def classic_step(xp: Any, Ws: list[Array], bs: list[Array], x: Array, t: Array, lr: float) -> Any:
    """The hand-written step of the backprop tutorials, for any library with NumPy's operators
    (numpy, cupy, torch): a new array for every operation, weights updated in place."""
    hs = [x]
    for W, b in zip(Ws, bs, strict=True):
        hs.append(1.0 / (1.0 + xp.exp(-(hs[-1] @ W + b))))
    y = hs[-1]
    loss = 0.5 * ((y - t) ** 2).sum()
    delta = (y - t) * y * (1 - y)
    for i in reversed(range(len(Ws))):
        dW = hs[i].T @ delta
        db = delta.sum(axis=0)
        if i:
            delta = (delta @ Ws[i].T) * hs[i] * (1 - hs[i])
        Ws[i] -= lr * dW
        bs[i] -= lr * db
    return loss


def classic(lib: Lib, init: list[np.ndarray], x: Array, t: Array, lr: float) -> Impl:
    Ws = [lib.from_host(a) for a in init[0::2]]
    bs = [lib.from_host(a) for a in init[1::2]]

    def params() -> list[np.ndarray]:
        return [lib.to_host(a) for pair in zip(Ws, bs, strict=True) for a in pair]

    return Impl(lambda: classic_step(lib.xp, Ws, bs, x, t, lr), params)


_XPNET_BACKENDS = {
    "numpy": ("numpy", None),
    "torch": ("torch", "cpu"),
    "torch-cuda": ("torch", "cuda"),
    "cupy": ("cupy", None),
}


def _xpnet_net(lib: Lib, init: list[np.ndarray]) -> xpnet.MLP:
    name, device = _XPNET_BACKENDS[lib.name]
    sizes = [init[0].shape[0]] + [W.shape[1] for W in init[0::2]]
    net = xpnet.MLP(sizes, backend=name, device=device, dtype="float32")
    names = [f"{k}{i}" for i in range(1, len(init) // 2 + 1) for k in "Wb"]
    net.load_state_dict(dict(zip(names, init, strict=True)))
    return net


def xpnet_train_step(net: xpnet.MLP, loss: xpnet.Loss, opt: xpnet.Optimizer, x: Array, t: Array):
    """xpnet's step, `xpnet.train.step`, which `xpnet.fit` runs."""
    return xpnet.train.step(net, x, t, loss, opt)[1]


def _xpnet_params(lib: Lib, net: xpnet.MLP) -> Callable[[], list[np.ndarray]]:
    return lambda: [lib.to_host(a) for a in net.parameters().values()]


def xpnet_impl(lib: Lib, init: list[np.ndarray], x: Array, t: Array, lr: float) -> Impl:
    net = _xpnet_net(lib, init)
    loss, opt = xpnet.SSELoss(), xpnet.SGD(lr=lr)
    return Impl(lambda: xpnet_train_step(net, loss, opt, x, t), _xpnet_params(lib, net))


def xpnet_graph(lib: Lib, init: list[np.ndarray], x: Array, t: Array, lr: float) -> Impl:
    """xpnet's step captured once in a CUDA graph and replayed (torch-cuda only: CuPy cannot
    capture cuBLAS calls).

    The capture runs the step twice for real first, so the returned step starts two updates
    further on."""
    from xpnet.ops.torch import capture

    net = _xpnet_net(lib, init)
    loss, opt = xpnet.SSELoss(), xpnet.SGD(lr=lr)
    replay = capture(lambda: xpnet_train_step(net, loss, opt, x, t), net, opt)
    return Impl(replay, _xpnet_params(lib, net), steps_taken=2)


def torch_autograd(lib: Lib, init: list[np.ndarray], x: Array, t: Array, lr: float) -> Impl:
    """What a PyTorch user writes: nn.Sequential of Linear + Sigmoid, autograd, optim.SGD."""
    torch = lib.xp
    layers: list[Any] = []
    for W, b in zip(init[0::2], init[1::2], strict=True):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers).to(x.device)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((model(x) - t) ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    def params() -> list[np.ndarray]:
        out = []
        for linear in model[0::2]:
            out += [lib.to_host(linear.weight.T), lib.to_host(linear.bias)]
        return out

    return Impl(step, params)


BUILDERS: dict[str, Callable[[Lib, list[np.ndarray], Array, Array, float], Impl]] = {
    "xpnet": xpnet_impl,
    "classic": classic,
    "manual": classic,  # the same hand-written backward, in torch
    "autograd": torch_autograd,
    "xpnet+graph": xpnet_graph,
}
