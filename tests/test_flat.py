"""The flat parameter and gradient arrays of an MLP on NumPy: one optimizer call updates the
whole net, with exactly the arithmetic of per-parameter updates, and every way of replacing a
parameter (set_parameter, load_state_dict) keeps training correct."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet

OPTIMIZERS = {
    "sgd": lambda: xpnet.SGD(lr=0.3),
    "momentum": lambda: xpnet.SGD(lr=0.3, momentum=0.9),
    "adam": lambda: xpnet.Adam(lr=0.05),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), (rng.random((6, 2)) < 0.5).astype(float)


def _train(net, opt, steps, unflatten=False):
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    loss = xpnet.SSELoss()
    for _ in range(steps):
        if unflatten:  # rebinding every parameter turns the net's flat arrays off
            for name, p in net.parameters().items():
                net.set_parameter(name, xpnet.asarray(xpnet.to_numpy(p).copy(), like=net))
        loss.forward(net.forward(X), T)
        net.backward(loss.backward(), input_grad=False)
        opt.step(net)
    return {k: xpnet.to_numpy(v).copy() for k, v in net.parameters().items()}


def _state(opt):
    return {k: v if k == "t" else xpnet.to_numpy(v).copy() for k, v in opt.state_dict().items()}


def test_only_numpy_nets_keep_flat_arrays(backend):
    net = xpnet.MLP([3, 4, 2], backend=backend)
    flat = net.flat_buffers()
    if backend.name != "numpy":
        assert flat is None
        return
    P, G, layout = flat
    assert P.shape == G.shape == (3 * 4 + 4 + 4 * 2 + 2,)
    assert [(n, shape) for n, _, _, shape in layout] == [
        ("W1", (3, 4)),
        ("b1", (4,)),
        ("W2", (4, 2)),
        ("b2", (2,)),
    ]
    P[:] = np.arange(P.size)  # the parameters are views of P, in layout order
    np.testing.assert_array_equal(net.parameters()["b1"], np.arange(12, 16))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_flat_update_equals_per_parameter_updates(name):
    """Bit for bit, parameters and optimizer state (names and shapes included)."""
    nets = [xpnet.MLP([3, 4, 2], dtype="float64", seed=1) for _ in range(2)]
    opts = [OPTIMIZERS[name]() for _ in range(2)]
    flat = _train(nets[0], opts[0], 4)
    per_parameter = _train(nets[1], opts[1], 4, unflatten=True)
    assert nets[0].flat_buffers() is not None and nets[1].flat_buffers() is None
    for k, v in per_parameter.items():
        np.testing.assert_array_equal(flat[k], v)
    a, b = _state(opts[0]), _state(opts[1])
    assert a.keys() == b.keys() and a["t"] == b["t"] == 4
    for k in a.keys() - {"t"}:
        assert a[k].shape == nets[0].parameters()[k.partition(".")[2]].shape
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_resuming_from_state_dicts_is_exact(name):
    """load_state_dict into a fresh net and optimizer, then two more steps, equals four steps."""
    net, opt = xpnet.MLP([3, 4, 2], seed=3), OPTIMIZERS[name]()
    _train(net, opt, 2)
    net2, opt2 = xpnet.MLP([3, 4, 2], seed=9), OPTIMIZERS[name]()
    net2.load_state_dict(net.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert net2.flat_buffers() is not None
    resumed = _train(net2, opt2, 2)
    straight = _train(net, opt, 2)
    for k, v in straight.items():
        np.testing.assert_array_equal(resumed[k], v)


def test_load_state_dict_makes_a_rebound_net_flat_again():
    net = xpnet.MLP([3, 4, 2], seed=2)
    net.set_parameter("W1", np.zeros((3, 4)))
    assert net.flat_buffers() is None
    net.load_state_dict(xpnet.MLP([3, 4, 2], seed=2).state_dict())
    assert net.flat_buffers() is not None
    expected = _train(xpnet.MLP([3, 4, 2], seed=2), xpnet.Adam(0.05), 2)
    for k, v in _train(net, xpnet.Adam(0.05), 2).items():
        np.testing.assert_array_equal(v, expected[k])


def test_grads_are_overwritten_by_the_next_backward():
    net = xpnet.MLP([3, 4, 2], seed=2)
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    net.forward(X)
    net.backward(np.ones_like(T))
    first = net.grads["W2"]
    net.forward(X)
    net.backward(2 * np.ones_like(T))
    assert net.grads["W2"] is first  # written in place: values of the second backward
    fresh = xpnet.MLP([3, 4, 2], seed=2)
    fresh.set_parameter("W1", fresh.parameters()["W1"].copy())  # per-parameter, fresh grads
    fresh.forward(X)
    fresh.backward(2 * np.ones_like(T))
    np.testing.assert_array_equal(first, fresh.grads["W2"])


def test_a_rebound_gradient_is_what_the_optimizer_applies():
    """Clipping by rebinding net.grads[k] must reach the update (the flat path stands down)."""
    net = xpnet.MLP([3, 4, 2], seed=2)
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    loss = xpnet.SSELoss()
    before = {k: v.copy() for k, v in net.parameters().items()}
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    grads = {k: v.copy() for k, v in net.grads.items()}
    net.grads["W1"] = np.zeros_like(net.grads["W1"])
    assert net.flat_buffers() is None
    xpnet.SGD(lr=0.3).step(net)
    np.testing.assert_array_equal(net.parameters()["W1"], before["W1"])
    for k in ("b1", "W2", "b2"):
        np.testing.assert_array_equal(net.parameters()[k], before[k] - np.float32(0.3) * grads[k])


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_state_stays_right_across_per_parameter_and_flat_phases(name):
    """flat step, a per-parameter step (read-only parameters), flat again after load_state_dict:
    bit-identical to per-parameter steps throughout, optimizer state included."""
    net, opt = xpnet.MLP([3, 4, 2], seed=3), OPTIMIZERS[name]()
    _train(net, opt, 1)
    for k, p in net.parameters().items():  # read-only: the generic path, state rebound
        frozen = p.copy()
        frozen.flags.writeable = False
        net.set_parameter(k, frozen)
    _train(net, opt, 1)
    net.load_state_dict(net.state_dict())
    assert net.flat_buffers() is not None
    mixed = _train(net, opt, 2)
    ref_net, ref_opt = xpnet.MLP([3, 4, 2], seed=3), OPTIMIZERS[name]()
    reference = _train(ref_net, ref_opt, 4, unflatten=True)
    for k, v in reference.items():
        np.testing.assert_array_equal(mixed[k], v)
    a, b = _state(opt), _state(ref_opt)
    for k in a.keys() - {"t"}:
        np.testing.assert_array_equal(a[k], b[k])


def test_gradcheck_leaves_the_net_flat_and_unchanged():
    net = xpnet.MLP([3, 4, 2], seed=2, dtype="float64")
    before = {k: v.copy() for k, v in net.parameters().items()}
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    assert max(xpnet.gradcheck(net, xpnet.SSELoss(), X, T).values()) < 1e-6
    assert net.flat_buffers() is not None
    for k, v in net.parameters().items():
        np.testing.assert_array_equal(v, before[k])
