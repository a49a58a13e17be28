"""Every layer, every loss and the MLP: backward against central differences, in float64, on
every backend (relative error < 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet

pytestmark = pytest.mark.float64  # gradcheck is float64 on every backend

TOL = 1e-6


def _data(backend, shape, low=-1.0, high=1.0, seed=0):
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    return xpnet.asarray(values, like=backend, dtype="float64")


def _away_from_zero(backend, shape, seed=0):
    """Inputs with |x| >= 0.2, so the finite differences never straddle relu's kink."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.2, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return xpnet.asarray(values, like=backend, dtype="float64")


@pytest.mark.parametrize("bias", [True, False])
def test_linear(backend, bias):
    layer = xpnet.Linear(4, 3, backend=backend, dtype="float64", seed=1, bias=bias)
    errors = xpnet.gradcheck(layer, xpnet.SSELoss(), _data(backend, (5, 4)), _data(backend, (5, 3)))
    assert set(errors) == ({"W", "b", "input"} if bias else {"W", "input"})
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("layer_cls", [xpnet.Sigmoid, xpnet.Tanh, xpnet.ReLU, xpnet.Identity])
def test_activations(backend, layer_cls):
    X = _away_from_zero(backend, (4, 3))
    errors = xpnet.gradcheck(layer_cls(), xpnet.SSELoss(), X, _data(backend, (4, 3), seed=1))
    assert set(errors) == {"input"}
    assert errors["input"] < TOL, errors


def _targets(backend, kind):
    if kind == "onehot":
        labels = np.array([0, 2, 1, 2, 0])
        return xpnet.asarray(np.eye(3)[labels], like=backend, dtype="float64")
    return _data(backend, (5, 3), 0.0, 1.0, seed=2)


@pytest.mark.parametrize(
    ("loss", "outputs", "targets"),
    [
        (xpnet.SSELoss(), (-2.0, 2.0), "real"),
        (xpnet.MSELoss(), (-2.0, 2.0), "real"),
        (xpnet.BCELoss(), (0.05, 0.95), "real"),
        (xpnet.SoftmaxCrossEntropyLoss(), (-3.0, 3.0), "onehot"),
    ],
    ids=["sse", "mse", "bce", "softmax_ce"],
)
def test_losses(backend, loss, outputs, targets):
    Y = _data(backend, (5, 3), *outputs, seed=3)
    errors = xpnet.gradcheck(xpnet.Identity(), loss, Y, _targets(backend, targets))
    assert errors["input"] < TOL, errors


@pytest.mark.parametrize(
    ("hidden", "output", "loss"),
    [
        ("sigmoid", "sigmoid", xpnet.SSELoss()),
        ("tanh", "identity", xpnet.MSELoss()),
        ("relu", "identity", xpnet.SoftmaxCrossEntropyLoss()),
        ("sigmoid", "sigmoid", xpnet.BCELoss()),
    ],
)
def test_mlp(backend, hidden, output, loss):
    net = xpnet.MLP([3, 4, 5, 3], hidden, output, backend=backend, dtype="float64", seed=4)
    X = _away_from_zero(backend, (6, 3), seed=5)
    T = xpnet.asarray(np.eye(3)[[0, 1, 2, 0, 1, 2]], like=net)
    errors = xpnet.gradcheck(net, loss, X, T)
    assert set(errors) == {"W1", "b1", "W2", "b2", "W3", "b3", "input"}
    assert max(errors.values()) < TOL, errors


def test_gradcheck_catches_a_wrong_backward(backend):
    class Doubled(xpnet.Sigmoid):
        def backward(self, grad, input_grad=True):
            return 2.0 * super().backward(grad)

    X, T = _data(backend, (3, 2)), _data(backend, (3, 2), seed=1)
    assert xpnet.gradcheck(Doubled(), xpnet.SSELoss(), X, T)["input"] > 0.3


def test_gradcheck_refuses_float32():
    net = xpnet.MLP([2, 1])
    X = xpnet.asarray([[1.0, 2.0]], like=net)
    with pytest.raises(ValueError, match=r"gradcheck needs float64.*net.to\(dtype='float64'\)"):
        xpnet.gradcheck(net, xpnet.SSELoss(), X, xpnet.asarray([[1.0]], like=net))
