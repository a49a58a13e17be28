"""The parameter buffer: one flat parameter array P and one flat gradient array G per net on
every backend, as views where the library allows (NumPy, PyTorch, array-api-strict) and packed
where it does not (JAX's immutable arrays; read-only NumPy arrays stand in for them too): the
same numbers either way, and every way of replacing a parameter or a gradient keeps training
correct."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import is_writeable_array
from helpers import assert_same_training

import xpnet
from xpnet import params as params_module
from xpnet.params import ParameterBuffer

OPTIMIZERS = {
    "sgd": lambda: xpnet.SGD(lr=0.3),
    "momentum": lambda: xpnet.SGD(lr=0.3, momentum=0.9),
    "adam": lambda: xpnet.Adam(lr=0.05),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), (rng.random((6, 2)) < 0.5).astype(float)


def _train(net, opt, steps, read_only=False):
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    loss = xpnet.SSELoss()
    for _ in range(steps):
        if read_only:  # nothing may write into a parameter in place (JAX's rule)
            for p in net.parameters().values():
                p.flags.writeable = False
        xpnet.train.step(net, X, T, loss, opt)
    return {k: xpnet.to_numpy(v).copy() for k, v in net.parameters().items()}


@pytest.fixture
def packed(monkeypatch):
    """Nets built from here on pack their flat arrays, as they must for JAX."""
    monkeypatch.setattr(params_module, "_views_write_through", lambda xp, like: False)


def _state(opt):
    return {k: v if k == "t" else xpnet.to_numpy(v).copy() for k, v in opt.state_dict().items()}


def _writeable(backend) -> bool:
    """Whether the library's arrays can be written in place (not JAX's)."""
    return is_writeable_array(backend.xp.zeros((1,), device=backend.device))


def test_every_backend_keeps_parameters_as_views_of_one_flat_array(backend, dtype):
    """Views of one flat P and G where arrays are writeable; packed (JAX) where they are not,
    with the same flat arrays on request."""
    net = xpnet.MLP([3, 4, 2], backend=backend, dtype=dtype)
    buffer = net.parameter_buffer
    assert buffer.views == _writeable(backend)
    assert [(s.name, s.shape) for s in buffer.layout] == [
        ("W1", (3, 4)),
        ("b1", (4,)),
        ("W2", (4, 2)),
        ("b2", (2,)),
    ]
    P = buffer.flat_parameters()
    assert P.shape == (3 * 4 + 4 + 4 * 2 + 2,) and P.dtype == net.dtype
    new_P = xpnet.asarray(np.arange(P.shape[0]), like=net)
    if buffer.views:
        P[...] = new_P  # parameters are views of P
    else:
        buffer.store_flat_parameters(new_P)  # unpacked into new per-name arrays
    np.testing.assert_array_equal(xpnet.to_numpy(net.parameters()["b1"]), np.arange(12, 16))
    np.testing.assert_array_equal(xpnet.to_numpy(buffer.flat_parameters()), np.arange(26))
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    loss = xpnet.SSELoss()
    loss.forward(net.forward(X), T)
    net.backward(loss.backward())
    G = xpnet.to_numpy(buffer.flat_gradients())  # backward wrote into views of G
    assert list(net.grads) == ["W1", "b1", "W2", "b2"]
    expected = np.concatenate([xpnet.to_numpy(g).ravel() for g in net.grads.values()])
    np.testing.assert_array_equal(G, expected)


def test_read_only_arrays_are_packed_and_never_written():
    values = {"W": np.arange(6.0).reshape(2, 3), "b": np.array([10.0, 20.0])}
    for v in values.values():
        v.flags.writeable = False
    buffer = ParameterBuffer(values)
    assert not buffer.views
    np.testing.assert_array_equal(buffer.flat_parameters(), [0, 1, 2, 3, 4, 5, 10, 20])
    buffer.store_flat_parameters(np.arange(8.0) * 2)
    np.testing.assert_array_equal(buffer.params["W"], [[0, 2, 4], [6, 8, 10]])
    np.testing.assert_array_equal(buffer.params["b"], [12, 14])
    np.testing.assert_array_equal(values["W"], np.arange(6.0).reshape(2, 3))  # untouched
    with pytest.raises(RuntimeError, match=r"no gradients for \['W', 'b'\]: call net\.backward"):
        buffer.flat_gradients()
    buffer.grads.update({"b": np.ones(2), "W": np.zeros((2, 3))})
    np.testing.assert_array_equal(buffer.flat_gradients(), [0, 0, 0, 0, 0, 0, 1, 1])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_packed_training_equals_training_through_views(name, monkeypatch):
    """Bit for bit, parameters and optimizer state (names and shapes included), with every
    parameter read-only between steps on the packed side."""
    viewed_net, viewed_opt = xpnet.MLP([3, 4, 2], dtype="float64", seed=1), OPTIMIZERS[name]()
    viewed = _train(viewed_net, viewed_opt, 4)
    monkeypatch.setattr(params_module, "_views_write_through", lambda xp, like: False)
    packed_net, packed_opt = xpnet.MLP([3, 4, 2], dtype="float64", seed=1), OPTIMIZERS[name]()
    assert viewed_net.parameter_buffer.views and not packed_net.parameter_buffer.views
    packed = _train(packed_net, packed_opt, 4, read_only=True)
    for k, v in viewed.items():
        np.testing.assert_array_equal(packed[k], v)
    a, b = _state(viewed_opt), _state(packed_opt)
    assert a.keys() == b.keys() and a["t"] == b["t"] == 4
    for k in a.keys() - {"t"}:
        assert a[k].shape == viewed_net.parameters()[k.partition(".")[2]].shape
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("name", ["momentum", "adam"])
@pytest.mark.parametrize("mode", ["views", "packed"])
def test_resuming_from_state_dicts_is_exact(name, mode, request):
    """load_state_dict into a fresh net and optimizer, then two more steps, equals four steps."""
    if mode == "packed":
        request.getfixturevalue("packed")
    net, opt = xpnet.MLP([3, 4, 2], seed=3), OPTIMIZERS[name]()
    _train(net, opt, 2)
    net2, opt2 = xpnet.MLP([3, 4, 2], seed=9), OPTIMIZERS[name]()
    net2.load_state_dict(net.state_dict())
    opt2.load_state_dict(opt.state_dict())
    resumed = _train(net2, opt2, 2)
    straight = _train(net, opt, 2)
    for k, v in straight.items():
        np.testing.assert_array_equal(resumed[k], v)


def test_set_parameter_and_load_state_dict_copy_into_the_flat_array():
    net = xpnet.MLP([3, 4, 2], seed=2)
    P = net.parameter_buffer.flat_parameters()
    net.set_parameter("W1", np.zeros((3, 4), dtype=np.float32))
    assert net.parameter_buffer.flat_parameters() is P and not P[:12].any()
    net.load_state_dict(xpnet.MLP([3, 4, 2], seed=2).state_dict())
    assert net.parameter_buffer.flat_parameters() is P
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
    np.testing.assert_array_equal(first, net.layers[2].grads["W"])
    fresh = xpnet.MLP([3, 4, 2], seed=2)
    fresh.forward(X)
    fresh.backward(2 * np.ones_like(T))
    assert fresh.grads["W2"] is not first
    np.testing.assert_array_equal(first, fresh.grads["W2"])


@pytest.mark.parametrize("mode", ["views", "packed"])
def test_a_replaced_gradient_is_what_the_optimizer_applies(mode, request):
    """Clipping by hand, net.grads[k] = ..., reaches the update."""
    if mode == "packed":
        request.getfixturevalue("packed")
    net = xpnet.MLP([3, 4, 2], seed=2)
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    loss = xpnet.SSELoss()
    before = {k: v.copy() for k, v in net.parameters().items()}
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    grads = {k: v.copy() for k, v in net.grads.items()}
    net.grads["W1"] = np.zeros_like(net.grads["W1"])
    xpnet.SGD(lr=0.3).step(net)
    np.testing.assert_array_equal(net.parameters()["W1"], before["W1"])
    for k in ("b1", "W2", "b2"):
        np.testing.assert_array_equal(net.parameters()[k], before[k] - np.float32(0.3) * grads[k])


def test_a_standalone_linear_layer_has_its_own_buffer_and_trains():
    layer = xpnet.Linear(3, 2, dtype="float64", seed=1)
    X, T = _data()[0], np.ones((6, 2))
    W, b = layer.W.copy(), layer.b.copy()
    gY = layer.forward(X) - T
    layer.backward(gY)
    xpnet.SGD(lr=0.1).step(layer)
    np.testing.assert_allclose(layer.W, W - 0.1 * X.T @ gY, rtol=1e-14)
    np.testing.assert_allclose(layer.b, b - 0.1 * gY.sum(0), rtol=1e-14)


def test_gradcheck_leaves_the_net_flat_and_unchanged():
    net = xpnet.MLP([3, 4, 2], seed=2, dtype="float64")
    P = net.parameter_buffer.flat_parameters()
    before = P.copy()
    X, T = (xpnet.asarray(a, like=net) for a in _data())
    assert max(xpnet.gradcheck(net, xpnet.SSELoss(), X, T).values()) < 1e-6
    assert net.parameter_buffer.flat_parameters() is P
    np.testing.assert_array_equal(P, before)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_packed_equals_views_on_every_backend(backend, dtype, name, monkeypatch):
    """The pack/unpack path (JAX's) gives every backend the numbers of its view path."""

    def run():
        net = xpnet.MLP([3, 4, 2], backend=backend, dtype=dtype, seed=1)
        X, T = (xpnet.asarray(a, like=net) for a in _data())
        opt = OPTIMIZERS[name]()
        for _ in range(3):
            xpnet.train.step(net, X, T, xpnet.SSELoss(), opt)
        return net, {k: xpnet.to_numpy(v) for k, v in net.parameters().items()}

    viewed_net, viewed = run()
    monkeypatch.setattr(params_module, "_views_write_through", lambda xp, like: False)
    packed_net, packed = run()
    assert viewed_net.parameter_buffer.views == _writeable(backend)  # JAX packs either way
    assert not packed_net.parameter_buffer.views
    for k, v in viewed.items():
        np.testing.assert_array_equal(packed[k], v)


@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_runs_saved_by_xpnet_0_1_resume_exactly(name):
    """Files written before the parameter buffer and the optimizer package (tests/data/
    runs-0.1) load, and two epochs + one more equal that version's three straight epochs."""
    from pathlib import Path

    from xpnet.data import load_dataset, train_test_split

    here = Path(__file__).parent / "data" / "runs-0.1"
    ck = xpnet.load_checkpoint(here / f"{name}-epoch2.safetensors", backend="numpy")
    assert ck.epoch == 2 and ck.optimizer.t > 0 and type(ck.optimizer).name == name
    train, _ = train_test_split(load_dataset("digits"), 0.2, 0)
    xpnet.fit(
        ck.net,
        train.X,
        train.y,
        loss=xpnet.SoftmaxCrossEntropyLoss(),
        optimizer=ck.optimizer,
        epochs=3,
        initial_epoch=2,
        batch_size=32,
        seed=ck.seed,
    )
    expected = np.load(here / f"{name}-epoch3-weights.npz")
    for k, v in ck.net.parameters().items():
        assert_same_training(v, expected[k], err_msg=k)
