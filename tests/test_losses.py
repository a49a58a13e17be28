"""The losses: values and gradients against their formulas on every backend, the targets they
refuse, and sample weights (each loss's weighted value and gradient against a hand computation
in NumPy float64; unit weights give the unweighted loss, an integer weight counts a row that
many times, and bad weights are refused)."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.backend import BackendError


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _problem(name, n=6, k=3, seed=0):
    """Outputs Y and targets T (n, k) that loss `name` can score, and weights w (n,)."""
    rng = np.random.default_rng(seed)
    if name == "bce":
        Y, T = rng.uniform(0.05, 0.95, (n, k)), rng.uniform(0.0, 1.0, (n, k))
    elif name == "softmax_ce":
        Y, T = rng.normal(size=(n, k)), np.eye(k)[rng.integers(0, k, n)]
    else:
        Y, T = rng.normal(size=(n, k)), rng.normal(size=(n, k))
    return Y, T, rng.uniform(0.2, 3.0, n)


def _by_hand(name, Y, T, w):
    """(value, dL/dY) of loss `name` with sample weights w, in float64."""
    k = Y.shape[1]
    c = w[:, None]
    if name == "sse":
        D = Y - T
        return 0.5 * np.sum(c * D * D), c * D
    if name == "mse":
        D = Y - T
        return np.sum(c * D * D) / k / w.sum(), 2 * c * D / (k * w.sum())
    if name == "bce":
        E = -(T * np.log(Y) + (1 - T) * np.log(1 - Y))
        return np.sum(c * E) / k / w.sum(), c * (Y - T) / (Y * (1 - Y)) / (k * w.sum())
    assert name == "softmax_ce"
    E = -T * np.log(_softmax(Y))
    return np.sum(c * E) / w.sum(), c * (_softmax(Y) - T) / w.sum()


def _host(a):
    return xpnet.to_numpy(a).astype(np.float64)


@pytest.mark.parametrize("name", list(xpnet.losses.LOSSES))
def test_weighted_value_and_gradient_are_the_hand_computed_ones(backend, dtype, name):
    Y, T, w = _problem(name)
    on = lambda a: backend.from_host(a.astype(dtype))  # noqa: E731
    loss = xpnet.losses.LOSSES[name]()
    value = loss.forward(on(Y), on(T), sample_weight=on(w))
    gradient = loss.backward()
    Yd, Td, wd = (_host(on(a)) for a in (Y, T, w))  # the numbers the backend saw
    want_value, want_gradient = _by_hand(name, Yd, Td, wd)
    tol = 50 * float(np.finfo(dtype).eps)
    assert float(_host(value)) == pytest.approx(want_value, rel=tol)
    np.testing.assert_allclose(_host(gradient), want_gradient, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(xpnet.losses.LOSSES))
def test_unit_weights_give_the_unweighted_loss(name):
    Y, T, _ = _problem(name, seed=1)
    loss = xpnet.losses.LOSSES[name]()
    plain, plain_gradient = loss.forward(Y, T), loss.backward()
    weighted = loss.forward(Y, T, sample_weight=np.ones(Y.shape[0]))
    np.testing.assert_allclose(weighted, plain, rtol=1e-14)
    np.testing.assert_allclose(loss.backward(), plain_gradient, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("name", list(xpnet.losses.LOSSES))
def test_a_weight_of_two_counts_a_row_twice(name):
    """Weighting row 0 by 2 is repeating it: the same value, and the gradients of the two
    copies add up to the weighted row's."""
    Y, T, _ = _problem(name, seed=2)
    loss = xpnet.losses.LOSSES[name]()
    w = np.ones(Y.shape[0])
    w[0] = 2.0
    weighted, weighted_gradient = loss.forward(Y, T, sample_weight=w), loss.backward()
    twice = loss.forward(np.concatenate([Y[:1], Y]), np.concatenate([T[:1], T]))
    twice_gradient = loss.backward()
    np.testing.assert_allclose(weighted, twice, rtol=1e-14)
    np.testing.assert_allclose(weighted_gradient[0], twice_gradient[0] + twice_gradient[1])
    np.testing.assert_allclose(weighted_gradient[1:], twice_gradient[2:], rtol=1e-14)


def test_weighted_gradient_matches_central_differences():
    """The weighted gradient is the derivative of the weighted value (every loss, float64)."""
    for name, cls in xpnet.losses.LOSSES.items():
        Y, T, w = _problem(name, n=4, k=2, seed=3)
        loss = cls()
        loss.forward(Y, T, sample_weight=w)
        gradient = loss.backward()
        h = 1e-6
        for index in np.ndindex(*Y.shape):
            up, down = Y.copy(), Y.copy()
            up[index] += h
            down[index] -= h
            slope = (loss.forward(up, T, w) - loss.forward(down, T, w)) / (2 * h)
            assert gradient[index] == pytest.approx(slope, rel=1e-6, abs=1e-9), (name, index)


def test_bad_sample_weights_are_refused_with_the_fix():
    Y, T, w = _problem("mse")
    loss = xpnet.MSELoss()
    with pytest.raises(ValueError, match=r"sample_weight has shape \(5,\) but the batch has 6"):
        loss.forward(Y, T, sample_weight=w[:5])
    with pytest.raises(xpnet.BackendError, match="sample_weight has dtype float32"):
        loss.forward(Y, T, sample_weight=w.astype(np.float32))
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(xpnet.BackendError, match="two places"):
        loss.forward(Y, T, sample_weight=strict.asarray(w))


# -- unweighted values, gradients and refusals ----------------------------------------------
RNG = np.random.default_rng(0)
Y_HOST = RNG.random((5, 3)) * 0.9 + 0.05  # probabilities, for BCE too
T_HOST = np.eye(3)[[0, 2, 1, 1, 0]]


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


def test_softmax_cross_entropy_refuses_one_output_and_rows_not_summing_to_one():
    """Issue 21, item 6: one output gave loss 0 and learnt nothing; soft targets that are not
    distributions were scored silently."""
    net = xpnet.MLP([2, 3, 1], output="identity")
    X = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        xpnet.fit(net, X, np.ones((4, 1), np.float32), loss="softmax_ce", epochs=1)
    net = xpnet.MLP([2, 3, 2], output="identity")
    with pytest.raises(ValueError, match="sum to 1"):
        xpnet.fit(net, X, np.full((4, 2), 0.3, np.float32), loss="softmax_ce", epochs=1)
    xpnet.fit(net, X, np.full((4, 2), 0.5, np.float32), loss="softmax_ce", epochs=1)  # soft ok
