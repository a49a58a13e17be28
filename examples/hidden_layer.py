"""The second seed program, rewritten with xpnet: a 2-2-1 network, a sigmoid hidden layer and a
sigmoid output, no biases, trained by backpropagation on the squared error E = 1/2 (t - y)^2.

The textbook numbers: inputs (0.35, 0.9), target 0.5, weights 0.1, 0.8 / 0.4, 0.6 into the
hidden units and 0.3, 0.9 into the output. The first forward pass gives y = 0.69; each step
sends the error back through the output sigmoid, the hidden weights and the hidden sigmoids
(`net.backward`) and moves every weight against its gradient, so y approaches 0.5.

    python examples/hidden_layer.py --backend numpy      # or torch, array_api_strict, cupy
"""

from __future__ import annotations

import argparse

import xpnet

X, T = [[0.35, 0.9]], [[0.5]]
V = [[0.1, 0.4], [0.8, 0.6]]  # input i -> hidden j
U = [[0.3], [0.9]]  # hidden j -> output


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
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1.0)
    args = parser.parse_args(argv)

    try:
        net = xpnet.MLP(
            [2, 2, 1],
            hidden="sigmoid",
            output="sigmoid",
            bias=False,
            backend=args.backend,
            device=args.device,
            dtype=args.dtype,
        )
    except (xpnet.BackendError, ValueError) as err:  # a backend, device or dtype not here
        parser.error(str(err))
    net.load_state_dict({"W1": xpnet.asarray(V, like=net), "W2": xpnet.asarray(U, like=net)})
    x, t = xpnet.asarray(X, like=net), xpnet.asarray(T, like=net)
    loss, optimizer = xpnet.SSELoss(), xpnet.SGD(lr=args.lr)
    print(f"2-2-1 sigmoid network on {net.backend}, {args.dtype}")
    trace = []
    for step in range(args.steps + 1):
        y = net.forward(x)
        error = loss.forward(y, t)
        trace.append((float(xpnet.to_numpy(y)[0, 0]), float(xpnet.to_numpy(error))))
        if step % 10 == 0 or step == args.steps:
            print(f"step {step:3d}  y = {trace[-1][0]:.6f}  E = {trace[-1][1]:.3e}")
        if step < args.steps:
            net.backward(loss.backward())
            optimizer.step(net)
    for name, w in net.state_dict().items():
        print(f"{name} = {xpnet.to_numpy(w).astype(float).round(4).tolist()}")
    return trace


if __name__ == "__main__":
    main()
