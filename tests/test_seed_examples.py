"""The seeds' two worked examples, with the expected numbers derived independently: by hand in
float64 with Python's math module, and by finite differences of the hand-written error."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def finite_difference(error, weights: list[float], i: int, eps: float = 1e-6) -> float:
    up, down = list(weights), list(weights)
    up[i] += eps
    down[i] -= eps
    return (error(up) - error(down)) / (2 * eps)


# -- 1. one gradient-descent step of a single sigmoid neuron without bias, E = 0.5 (t - y)^2 --
X1, T1, W1, LR1 = [1.0, -2.0, 0.5], 1.0, [0.3, -0.1, 0.8], 0.5


def neuron_error(w: list[float]) -> float:
    y = sigmoid(sum(wi * xi for wi, xi in zip(w, X1, strict=True)))
    return 0.5 * (T1 - y) ** 2


@pytest.mark.float64
def test_single_neuron_step_by_hand(backend):
    z = sum(w * x for w, x in zip(W1, X1, strict=True))  # 0.3 + 0.2 + 0.4 = 0.9
    y = sigmoid(z)
    delta = (y - T1) * y * (1 - y)
    grad = [delta * x for x in X1]
    for i in range(3):  # the chain rule agrees with the error's own slope
        assert grad[i] == pytest.approx(finite_difference(neuron_error, W1, i), rel=1e-8)
    expected = [w - LR1 * g for w, g in zip(W1, grad, strict=True)]

    layer = xpnet.Linear(3, 1, backend=backend, dtype="float64", bias=False)
    layer.set_parameter("W", xpnet.asarray(np.array(W1)[:, None], like=layer))
    act, loss = xpnet.Sigmoid(), xpnet.SSELoss()
    x = xpnet.asarray([X1], like=layer)
    out = act.forward(layer.forward(x))
    E = loss.forward(out, xpnet.asarray([[T1]], like=layer))
    layer.backward(act.backward(loss.backward()))
    xpnet.SGD(lr=LR1).step(layer)

    assert float(xpnet.to_numpy(out)[0, 0]) == pytest.approx(y, rel=1e-14)
    assert float(xpnet.to_numpy(E)) == pytest.approx(neuron_error(W1), rel=1e-14)
    new_w = xpnet.to_numpy(layer.W)[:, 0]
    np.testing.assert_allclose(new_w, expected, rtol=1e-14)
    assert neuron_error(list(new_w)) < neuron_error(W1)


# -- 2. one backprop step of a 2-2-1 net, sigmoid hidden layer and output, no biases ---------
# The textbook numbers: inputs 0.35 and 0.9, target 0.5, weights 0.1, 0.8 / 0.4, 0.6 into the
# hidden units and 0.3, 0.9 into the output; the forward pass gives y = 0.69 (error -0.19).
X2, T2, LR2 = [0.35, 0.9], 0.5, 1.0
V = [[0.1, 0.4], [0.8, 0.6]]  # V[i][j]: input i -> hidden j (W1 of the MLP, shaped (in, out))
U = [0.3, 0.9]  # hidden j -> output (W2, shaped (2, 1))


def net_error(flat: list[float]) -> float:
    v = [[flat[0], flat[1]], [flat[2], flat[3]]]
    u = flat[4:]
    h = [sigmoid(sum(X2[i] * v[i][j] for i in range(2))) for j in range(2)]
    y = sigmoid(sum(h[j] * u[j] for j in range(2)))
    return 0.5 * (T2 - y) ** 2


@pytest.mark.float64
def test_hidden_layer_backprop_step_by_hand(backend):
    h = [sigmoid(sum(X2[i] * V[i][j] for i in range(2))) for j in range(2)]
    y = sigmoid(sum(h[j] * U[j] for j in range(2)))
    assert y == pytest.approx(0.69, abs=5e-3)  # the textbook's forward pass
    delta_out = (y - T2) * y * (1 - y)
    grad_u = [h[j] * delta_out for j in range(2)]
    delta_h = [delta_out * U[j] * h[j] * (1 - h[j]) for j in range(2)]
    grad_v = [[X2[i] * delta_h[j] for j in range(2)] for i in range(2)]
    flat_w = [V[0][0], V[0][1], V[1][0], V[1][1], *U]
    flat_g = [*grad_v[0], *grad_v[1], *grad_u]
    for i, g in enumerate(flat_g):
        assert g == pytest.approx(finite_difference(net_error, flat_w, i), rel=1e-7)

    net = xpnet.MLP([2, 2, 1], "sigmoid", "sigmoid", backend=backend, dtype="float64", bias=False)
    net.load_state_dict({"W1": np.array(V), "W2": np.array(U)[:, None]})
    loss = xpnet.SSELoss()
    out = net.forward(xpnet.asarray([X2], like=net))
    loss.forward(out, xpnet.asarray([[T2]], like=net))
    gX = net.backward(loss.backward())
    assert float(xpnet.to_numpy(out)[0, 0]) == pytest.approx(y, rel=1e-14)
    np.testing.assert_allclose(xpnet.to_numpy(net.grads["W1"]), grad_v, rtol=1e-12)
    np.testing.assert_allclose(xpnet.to_numpy(net.grads["W2"])[:, 0], grad_u, rtol=1e-12)
    expected_gx = [sum(V[i][j] * delta_h[j] for j in range(2)) for i in range(2)]
    np.testing.assert_allclose(xpnet.to_numpy(gX)[0], expected_gx, rtol=1e-12)

    xpnet.SGD(lr=LR2).step(net)
    new = net.state_dict()
    np.testing.assert_allclose(
        xpnet.to_numpy(new["W1"]), np.array(V) - LR2 * np.array(grad_v), rtol=1e-14
    )
    np.testing.assert_allclose(
        xpnet.to_numpy(new["W2"])[:, 0], np.array(U) - LR2 * np.array(grad_u), rtol=1e-14
    )
    new_flat = [*xpnet.to_numpy(new["W1"]).ravel(), *xpnet.to_numpy(new["W2"]).ravel()]
    assert net_error(new_flat) < net_error(flat_w)
