"""The first seed program, rewritten with xpnet: one sigmoid neuron without bias learns by
gradient descent on the squared error E = 1/2 (t - y)^2.

The neuron sees x = (1, -2, 0.5), starts from the weights (0.3, -0.1, 0.8) and should output
t = 1. Each step runs the forward pass, the loss, the backward pass (dE/dw = (y - t) y (1 - y) x,
the chain rule through the sigmoid) and w <- w - lr * dE/dw, and prints y and E.

    python examples/single_neuron.py --backend numpy     # or torch, array_api_strict, cupy
"""

from __future__ import annotations

import argparse

import xpnet

X, T, W = [[1.0, -2.0, 0.5]], [[1.0]], [[0.3], [-0.1], [0.8]]


def main(argv: list[str] | None = None) -> list[tuple[float, float]]:
    """Train and print; return (y, E) before each step and after the last."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend", default="numpy", help="numpy, torch, cupy, array_api_strict or jax"
    )
    parser.add_argument("--device", default=None, help="e.g. cuda:1; default: the backend's")
    parser.add_argument(
        "--dtype",
        default="float64",
        choices=["float32", "float64"],
        help="default: float64 (JAX needs JAX_ENABLE_X64=1 for it; or give float32)",
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args(argv)

    try:
        neuron = xpnet.MLP(
            [3, 1],
            output="sigmoid",
            bias=False,
            backend=args.backend,
            device=args.device,
            dtype=args.dtype,
        )
    except (xpnet.BackendError, ValueError) as err:  # a backend, device or dtype not here
        parser.error(str(err))
    neuron.load_state_dict({"W1": xpnet.asarray(W, like=neuron)})
    x, t = xpnet.asarray(X, like=neuron), xpnet.asarray(T, like=neuron)
    loss, optimizer = xpnet.SSELoss(), xpnet.SGD(lr=args.lr)
    print(f"one sigmoid neuron on {neuron.backend}, {args.dtype}")
    trace = []
    for step in range(args.steps + 1):
        y = neuron.forward(x)
        error = loss.forward(y, t)
        trace.append((float(xpnet.to_numpy(y)[0, 0]), float(xpnet.to_numpy(error))))
        w = xpnet.to_numpy(neuron.state_dict()["W1"]).ravel()
        print(f"step {step:3d}  y = {trace[-1][0]:.6f}  E = {trace[-1][1]:.6f}  w = {w.round(4)}")
        if step < args.steps:
            neuron.backward(loss.backward())
            optimizer.step(neuron)
    return trace


if __name__ == "__main__":
    main()
