"""Optimizers: the update rules against hand-computed values and against PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet


def _net_with_grads(backend, dtype, seed=0):
    net = xpnet.MLP([3, 2], output="identity", backend=backend, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    X = xpnet.asarray(rng.normal(size=(4, 3)), like=net)
    T = xpnet.asarray(rng.normal(size=(4, 2)), like=net)
    return net, X, T


def _step(net, X, T, opt):
    loss = xpnet.MSELoss()
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    grads = {k: xpnet.to_numpy(v).astype(np.float64) for k, v in net.grads.items()}
    opt.step(net)
    return grads


def _params(net):
    return {k: xpnet.to_numpy(v).astype(np.float64) for k, v in net.parameters().items()}


def test_sgd_is_p_minus_lr_g(backend, dtype):
    net, X, T = _net_with_grads(backend, dtype)
    before = _params(net)
    grads = _step(net, X, T, xpnet.SGD(lr=0.3))
    tol = 8 * np.finfo(dtype).eps
    for k, p in _params(net).items():
        np.testing.assert_allclose(p, before[k] - 0.3 * grads[k], rtol=tol, atol=tol)


def test_momentum_accumulates_velocity(backend, dtype):
    net, X, T = _net_with_grads(backend, dtype)
    opt = xpnet.Momentum(lr=0.1, momentum=0.9)
    p0 = _params(net)
    g1 = _step(net, X, T, opt)
    g2 = _step(net, X, T, opt)
    tol = 16 * np.finfo(dtype).eps
    for k, p in _params(net).items():
        v1 = g1[k]
        v2 = 0.9 * v1 + g2[k]
        np.testing.assert_allclose(p, p0[k] - 0.1 * v1 - 0.1 * v2, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    net, X, T = _net_with_grads("numpy", "float64", seed=3)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in _params(net).items()}
    ours, theirs = {
        "sgd": (xpnet.SGD(lr=0.2), torch.optim.SGD(params.values(), lr=0.2)),
        "momentum": (
            xpnet.Momentum(lr=0.1, momentum=0.8),
            torch.optim.SGD(params.values(), lr=0.1, momentum=0.8),
        ),
        "adam": (xpnet.Adam(lr=0.05), torch.optim.Adam(params.values(), lr=0.05)),
    }[name]
    for _ in range(5):
        grads = _step(net, X, T, ours)
        theirs.zero_grad()
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        theirs.step()
    for k, p in _params(net).items():
        np.testing.assert_allclose(p, params[k].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_state_dict_round_trip_continues_exactly():
    net_a, X, T = _net_with_grads("numpy", "float64")
    net_b, _, _ = _net_with_grads("numpy", "float64")
    opt_a = xpnet.Adam(lr=0.05)
    for _ in range(3):
        _step(net_a, X, T, opt_a)
    net_b.load_state_dict(net_a.state_dict())
    opt_b = xpnet.Adam(lr=0.05)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.t == 3
    _step(net_a, X, T, opt_a)
    _step(net_b, X, T, opt_b)
    for k, p in _params(net_a).items():
        np.testing.assert_array_equal(p, _params(net_b)[k])


def test_state_is_copied_in_and_out_so_optimizers_never_share_arrays():
    net_a, X, T = _net_with_grads("numpy", "float64")
    net_b, _, _ = _net_with_grads("numpy", "float64")
    opt_a = xpnet.Momentum(lr=0.1)
    _step(net_a, X, T, opt_a)
    saved = opt_a.state_dict()
    before = {k: v.copy() for k, v in saved.items() if k != "t"}
    opt_b = xpnet.Momentum(lr=0.1)
    opt_b.load_state_dict(saved)
    _step(net_b, X, T, opt_b)
    _step(net_a, X, T, opt_a)
    for k, v in before.items():  # neither optimizer's steps reached the saved arrays
        np.testing.assert_array_equal(saved[k], v)
    assert not np.array_equal(opt_a.state[k], v)


def test_foreign_optimizer_state_is_refused():
    with pytest.raises(KeyError, match=r"Adam keeps state \['m', 'v'\], not \['velocity.W1'\]"):
        xpnet.Adam().load_state_dict({"t": 1, "velocity.W1": np.zeros(2)})
    with pytest.raises(KeyError, match=r"SGD keeps state none"):
        xpnet.SGD(lr=0.1).load_state_dict({"t": 1, "m.W1": np.zeros(2)})


def test_bad_hyperparameters_and_missing_grads():
    with pytest.raises(ValueError, match="learning rate must be a positive number, got -1"):
        xpnet.SGD(lr=-1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        xpnet.SGD(lr=0.1, momentum=1.5)
    with pytest.raises(RuntimeError, match=r"call net\.backward"):
        xpnet.SGD(lr=0.1).step(xpnet.MLP([2, 1]))
