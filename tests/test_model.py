"""The MLP: reproducible initial weights, placement, state_dict round trips and bad input."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from helpers import host_weights

import xpnet
from xpnet.backend import BackendError


@pytest.mark.parametrize("hidden", ["sigmoid", "relu"])
def test_same_seed_gives_bit_identical_weights_on_every_backend(backend, dtype, hidden):
    reference = host_weights(xpnet.MLP([5, 7, 3], hidden, dtype=dtype, seed=11))
    net = xpnet.MLP([5, 7, 3], hidden, backend=backend, dtype=dtype, seed=11)
    got = host_weights(net)
    assert got.keys() == reference.keys() == {"W1", "b1", "W2", "b2"}
    for key, value in reference.items():
        assert got[key].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got[key], value)
    other = host_weights(xpnet.MLP([5, 7, 3], hidden, dtype=dtype, seed=12))
    assert not np.array_equal(other["W1"], reference["W1"])


def test_initial_weights_follow_the_documented_scales():
    W = xpnet.to_numpy(xpnet.MLP([400, 300, 1], dtype="float64").state_dict()["W1"])
    limit = np.sqrt(6.0 / 700)  # Glorot-uniform
    assert np.abs(W).max() <= limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    He = xpnet.to_numpy(xpnet.MLP([400, 300, 1], "relu", dtype="float64").state_dict()["W1"])
    assert He.std() == pytest.approx(np.sqrt(2.0 / 400), rel=0.02)


def test_everything_a_net_makes_stays_on_its_device(backend, dtype):
    net = xpnet.MLP([4, 6, 2], backend=backend, dtype=dtype)
    X = xpnet.asarray(np.random.default_rng(0).normal(size=(8, 4)), like=net)
    T = xpnet.asarray(np.eye(2)[[0, 1] * 4], like=net)
    opt = xpnet.Adam(lr=0.01)
    xpnet.fit(net, X, T, optimizer=opt, epochs=2, batch_size=3, validation=(X, T))
    Y = net.forward(X)
    loss = xpnet.SSELoss()
    loss.forward(Y, T)
    gX = net.backward(loss.backward())
    arrays = [Y, gX, *net.grads.values(), *net.parameters().values()]
    arrays += [v for k, v in opt.state_dict().items() if k != "t"]
    for a in arrays:
        assert str(array_api_compat.device(a)) == str(backend.device)
        assert a.dtype == net.dtype


def test_input_grad_false_skips_dx_and_keeps_the_same_grads(backend, dtype):
    net = xpnet.MLP([3, 4, 2], backend=backend, dtype=dtype)
    X = xpnet.asarray(np.ones((2, 3)), like=net)
    gY = xpnet.asarray(np.ones((2, 2)), like=net)
    net.forward(X)
    assert net.backward(gY) is not None
    full = {k: xpnet.to_numpy(v).copy() for k, v in net.grads.items()}  # the next backward
    # may overwrite the arrays of grads (on NumPy they are views of one flat buffer)
    net.forward(X)
    assert net.backward(gY, input_grad=False) is None
    for k, v in net.grads.items():  # overwritten, not summed
        np.testing.assert_array_equal(xpnet.to_numpy(v), full[k])


def test_state_dict_is_a_copy_and_loads_from_any_library(backend, dtype):
    net = xpnet.MLP([2, 3, 1], backend=backend, dtype=dtype, seed=0)
    state = net.state_dict()
    host = {k: xpnet.to_numpy(v) * 0 + 0.25 for k, v in state.items()}
    net.load_state_dict(host)
    host["W1"][...] = 7.0  # the net holds copies, not the caller's arrays
    for v in net.parameters().values():
        np.testing.assert_array_equal(xpnet.to_numpy(v), 0.25)
    assert not np.allclose(xpnet.to_numpy(state["W1"]), 0.25)
    other = xpnet.MLP([2, 3, 1], seed=5)
    net.load_state_dict(other.state_dict())
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(xpnet.to_numpy(net.parameters()[k]), xpnet.to_numpy(v))


def test_load_state_dict_refuses_missing_extra_and_misshapen_keys():
    net = xpnet.MLP([2, 3, 1])
    good = net.state_dict()
    before = host_weights(net)
    with pytest.raises(KeyError, match=r"missing keys \['b2'\]"):
        net.load_state_dict({k: v for k, v in good.items() if k != "b2"})
    with pytest.raises(KeyError, match=r"unexpected keys \['W3'\]"):
        net.load_state_dict({**good, "W3": good["W2"]})
    with pytest.raises(ValueError, match=r"state_dict\['W1'\] has shape \(3, 2\).*needs \(2, 3\)"):
        net.load_state_dict({**good, "W1": np.zeros((3, 2))})
    for k, v in host_weights(net).items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.float64
def test_to_moves_a_copy(backend):
    net = xpnet.MLP([3, 2], seed=4)
    moved = net.to(backend, dtype="float64")
    assert moved.backend.name == backend.name and moved.dtype_name == "float64"
    for k, v in host_weights(net).items():
        np.testing.assert_array_equal(xpnet.to_numpy(moved.state_dict()[k]), v.astype("float64"))


def test_wrong_feature_count_says_expected_and_got(backend):
    net = xpnet.MLP([3, 2], backend=backend)
    X = xpnet.asarray(np.ones((4, 5)), like=net)
    with pytest.raises(ValueError, match=r"expects \(batch, 3\): 3 features per sample, got 5"):
        net.forward(X)
    with pytest.raises(ValueError, match=r"X has shape \(3,\)"):
        net.forward(xpnet.asarray(np.ones(3), like=net))


def test_integer_and_boolean_inputs_are_refused_with_the_fix():
    net = xpnet.MLP([2, 1])
    for X in (np.ones((1, 2), dtype=np.int64), np.ones((1, 2), dtype=bool)):
        with pytest.raises(BackendError, match=r"dtype .* xpnet.asarray\(X, like=net\)"):
            net.forward(X)
    with pytest.raises(BackendError, match="dtype float64 but the net is float32"):
        net.forward(np.ones((1, 2)))


def test_arrays_of_another_library_or_device_are_refused(backend):
    net = xpnet.MLP([2, 1], backend=backend)
    other = "torch" if backend.name != "torch" else "numpy"
    if xpnet.available_backends()[other] != "ok":
        pytest.skip(f"{other} not available")
    X = xpnet.asarray(np.ones((1, 2)), like=other)
    with pytest.raises(BackendError, match=rf"X is a {other} array but the net runs on "):
        net.forward(X)


def test_arrays_from_another_device_are_refused():
    pytest.importorskip("array_api_strict")
    net = xpnet.MLP([2, 1], backend="array_api_strict", device="device1")
    X = xpnet.asarray(np.ones((1, 2)), like="array_api_strict")
    with pytest.raises(BackendError, match=r"X is on device .*CPU_DEVICE.* runs on .*device1"):
        net.forward(X)


def test_bad_architecture_is_refused():
    with pytest.raises(ValueError, match="at least an input and an output"):
        xpnet.MLP([3])
    with pytest.raises(ValueError, match="unknown hidden activation 'soft'"):
        xpnet.MLP([3, 1], hidden="soft")
    with pytest.raises(BackendError, match="unsupported dtype 'float16'"):
        xpnet.MLP([3, 1], dtype="float16")


def test_identity_hidden_units_make_a_linear_net(backend, dtype):
    """hidden="identity" (scikit-learn's activation="identity"): the net is one affine map,
    X @ W1 @ W2 + b1 @ W2 + b2, with Glorot weights as for sigmoid and tanh."""
    net = xpnet.MLP([3, 4, 2], hidden="identity", output="identity", backend=backend, dtype=dtype)
    X = np.random.default_rng(0).normal(size=(5, 3))
    p = {k: xpnet.to_numpy(v).astype(np.float64) for k, v in net.parameters().items()}
    expected = (X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    Y = xpnet.to_numpy(net.forward(xpnet.asarray(X, like=net)))
    tol = 100 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(Y, expected, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="unknown hidden activation 'linear'"):
        xpnet.MLP([3, 4, 2], hidden="linear")


def test_mlp_blocks_are_linear_norm_activation_dropout_and_pre_activation_residuals():
    net = xpnet.MLP([5, 8, 8, 3], "relu", "identity", dropout=0.1, norm="layer", residual=True)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Dropout", "Residual", "Linear", "Identity"]
    inner = [type(layer).__name__ for layer in net.layers[4].sublayers]
    assert inner == ["LayerNorm", "ReLU", "Dropout", "Linear"]
    assert net.sizes == [5, 8, 8, 3] and [lin.init for lin in net.linears] == ["he"] * 3
    assert net.config()["norm"] == "layer" and net.config()["residual"] is True
    assert "dropout" not in xpnet.MLP([5, 3]).config()  # a plain MLP's config is as it was
    again = xpnet.MLP(**net.config())
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], value)
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        xpnet.MLP([5, 3], norm="group")


@pytest.mark.parametrize(
    ("blocks", "ratio", "accuracy"),
    [({}, (0, 1e-3), (0, 0.2)), ({"norm": "layer", "residual": True}, (0.1, 10), (0.93, 1))],
    ids=["plain", "layer-norm-residual"],
)
def test_the_cure_for_vanishing_gradients_in_a_depth_20_sigmoid_net(blocks, ratio, accuracy):
    from xpnet.data import load_digits, train_test_split
    from xpnet.diagnostics import layer_gradient_norms

    train, test = train_test_split(load_digits(), 0.2, 0)
    net = xpnet.MLP([64, *[32] * 19, 10], "sigmoid", "identity", seed=0, **blocks)
    loss = xpnet.SoftmaxCrossEntropyLoss()
    norms = layer_gradient_norms(net, train.X[:256], train.y[:256], loss)
    assert len(norms) == 20 and ratio[0] < norms[0] / norms[-1] < ratio[1]
    xpnet.fit(
        net, train.X, train.y, loss=loss, optimizer=xpnet.Adam(1e-3), epochs=20, batch_size=32
    )
    assert accuracy[0] < xpnet.evaluate(net, test.X, test.y, loss)["accuracy"] < accuracy[1]
