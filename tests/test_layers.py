"""The layers on their own (xpnet.layers): Linear's forward and backward against NumPy's
x @ W + b and its three products, the activations against their formulas, on every backend;
parameters and gradients by name; backward before forward refused."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet

RNG = np.random.default_rng(0)
X_HOST = RNG.normal(size=(5, 4))
G_HOST = RNG.normal(size=(5, 3))

ACTIVATIONS = {
    "Sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda y, g: g * y * (1 - y)),
    "Tanh": (np.tanh, lambda y, g: g * (1 - y * y)),
    "ReLU": (lambda x: np.maximum(x, 0), lambda y, g: np.where(y > 0, g, 0)),
    "Identity": (lambda x: x, lambda y, g: g),
}


def _tol(dtype):
    return {"rtol": 64 * float(np.finfo(dtype).eps), "atol": 64 * float(np.finfo(dtype).eps)}


@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_are_the_matrix_products(backend, dtype, bias):
    layer = xpnet.Linear(4, 3, backend=backend, dtype=dtype, seed=1, bias=bias)
    assert tuple(layer.W.shape) == (4, 3)
    assert set(layer.params) == ({"W", "b"} if bias else {"W"})
    x, g = (xpnet.asarray(a, like=layer) for a in (X_HOST, G_HOST))
    W = xpnet.to_numpy(layer.W).astype(np.float64)
    b = xpnet.to_numpy(layer.b).astype(np.float64) if bias else 0.0
    xh, gh = xpnet.to_numpy(x).astype(np.float64), xpnet.to_numpy(g).astype(np.float64)
    np.testing.assert_allclose(xpnet.to_numpy(layer.forward(x)), xh @ W + b, **_tol(dtype))
    dx = layer.backward(g)
    np.testing.assert_allclose(xpnet.to_numpy(dx), gh @ W.T, **_tol(dtype))
    np.testing.assert_allclose(xpnet.to_numpy(layer.grads["W"]), xh.T @ gh, **_tol(dtype))
    if bias:
        assert tuple(layer.b.shape) == (3,)
        np.testing.assert_allclose(xpnet.to_numpy(layer.grads["b"]), gh.sum(0), **_tol(dtype))
    assert layer.backward(g, input_grad=False) is None


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_and_backward_follow_the_formula(backend, dtype, name):
    layer = getattr(xpnet.layers, name)()
    assert layer.params == {} and layer.grads == {}
    x = xpnet.asarray(X_HOST, like=backend, dtype=dtype)
    g = xpnet.asarray(X_HOST[::-1].copy(), like=backend, dtype=dtype)
    forward, backward = ACTIVATIONS[name]
    xh, gh = xpnet.to_numpy(x).astype(np.float64), xpnet.to_numpy(g).astype(np.float64)
    y = layer.forward(x)
    np.testing.assert_allclose(xpnet.to_numpy(y), forward(xh), **_tol(dtype))
    yh = xpnet.to_numpy(y).astype(np.float64)
    np.testing.assert_allclose(xpnet.to_numpy(layer.backward(g)), backward(yh, gh), **_tol(dtype))


def test_backward_before_forward_says_so():
    with pytest.raises(RuntimeError, match=r"Linear.backward called before forward"):
        xpnet.Linear(2, 2).backward(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match=r"Sigmoid.backward called before forward"):
        xpnet.Sigmoid().backward(np.zeros((1, 2)))


def test_a_parameter_is_set_by_name_and_an_unknown_name_is_refused():
    layer = xpnet.Linear(2, 3, bias=False)
    layer.set_parameter("W", np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(xpnet.to_numpy(layer.W), np.ones((2, 3)))
    with pytest.raises(KeyError, match=r"has parameters \['W'\], not 'b'"):
        layer.set_parameter("b", np.zeros(3, dtype=np.float32))


def test_lecun_init_draws_normal_weights_of_std_sqrt_1_over_n_in():
    """LeCun-normal: mean 0, std sqrt(1 / n_in): He-normal's draws over sqrt(2)."""
    W = xpnet.to_numpy(xpnet.Linear(400, 300, init="lecun", dtype="float64", seed=7).W)
    assert abs(W.mean()) < 3 * np.sqrt(1 / 400) / np.sqrt(W.size)
    assert W.std() == pytest.approx(np.sqrt(1 / 400), rel=0.01)  # 120 000 draws: ~0.2 % noise
    he = xpnet.to_numpy(xpnet.Linear(400, 300, init="he", dtype="float64", seed=7).W)
    np.testing.assert_allclose(he, np.sqrt(2) * W, rtol=1e-12)
