"""The losses: values and gradients against their formulas on every backend, and the
targets they refuse."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.backend import BackendError

RNG = np.random.default_rng(0)
Y_HOST = RNG.random((5, 3)) * 0.9 + 0.05  # probabilities, for BCE too
T_HOST = np.eye(3)[[0, 2, 1, 1, 0]]


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# loss -> (its value, its gradient dL/dY) from the float64 formulas
FORMULAS = {
    "sse": (lambda Y, T: 0.5 * np.sum((Y - T) ** 2), lambda Y, T: Y - T),
    "mse": (lambda Y, T: np.mean((Y - T) ** 2), lambda Y, T: 2 * (Y - T) / Y.size),
    "bce": (
        lambda Y, T: -np.mean(T * np.log(Y) + (1 - T) * np.log(1 - Y)),
        lambda Y, T: (Y - T) / (Y * (1 - Y)) / Y.size,
    ),
    "softmax_ce": (
        lambda Y, T: -np.sum(T * np.log(_softmax(Y))) / len(Y),
        lambda Y, T: (_softmax(Y) - T) / len(Y),
    ),
}
LOSSES = {
    "sse": xpnet.SSELoss,
    "mse": xpnet.MSELoss,
    "bce": xpnet.BCELoss,
    "softmax_ce": xpnet.SoftmaxCrossEntropyLoss,
}


@pytest.mark.parametrize("name", FORMULAS)
def test_value_and_gradient_follow_the_formula(backend, dtype, name):
    Y, T = (xpnet.asarray(a, like=backend, dtype=dtype) for a in (Y_HOST, T_HOST))
    loss = LOSSES[name]()
    value, gradient = FORMULAS[name]
    Yd, Td = xpnet.to_numpy(Y).astype(np.float64), xpnet.to_numpy(T).astype(np.float64)
    rtol = 64 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(float(xpnet.to_numpy(loss.forward(Y, T))), value(Yd, Td), rtol=rtol)
    grad = loss.backward()
    assert xpnet.backend_of(grad).name == backend.name and grad.dtype == Y.dtype
    np.testing.assert_allclose(xpnet.to_numpy(grad), gradient(Yd, Td), rtol=rtol, atol=rtol)


def test_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match=r"SSELoss.backward called before forward"):
        xpnet.SSELoss().backward()


def test_a_loss_of_perfect_outputs_is_zero_with_a_zero_gradient(backend):
    T = backend.from_host(T_HOST)
    for name in ("sse", "mse"):
        loss = LOSSES[name]()
        assert float(xpnet.to_numpy(loss.forward(T, T))) == 0.0
        assert not np.any(xpnet.to_numpy(loss.backward()))


def test_loss_refuses_mismatched_targets():
    loss = xpnet.SSELoss()
    with pytest.raises(
        ValueError, match=r"targets have shape \(2, 1\).*outputs have shape \(2, 3\)"
    ):
        loss.forward(np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(
        BackendError, match="targets have dtype float32 but the outputs have float64"
    ):
        loss.forward(np.zeros((2, 1)), np.zeros((2, 1), dtype=np.float32))


def test_bce_refuses_targets_outside_0_1(backend):
    loss = xpnet.BCELoss()
    Y = backend.from_host(np.array([[0.2], [0.7], [0.9]]))
    good = backend.from_host(np.array([[0.0], [1.0], [0.5]]))
    assert float(xpnet.to_numpy(loss.forward(Y, good))) > 0
    for bad, shown in (([[0.0], [2.0], [1.0]], "from 0 to 2"), ([[-1.0], [0.0], [1.0]], "from -1")):
        with pytest.raises(ValueError, match=f"BCELoss needs targets in \\[0, 1\\].*{shown}"):
            loss.forward(Y, backend.from_host(np.array(bad)))
    with pytest.raises(ValueError, match="BCELoss needs targets"):
        loss.forward(Y, backend.from_host(np.array([[0.0], [np.nan], [1.0]])))
