"""The data rules of `fit`, `evaluate` and `predict` (xpnet.inputs): casts, label coding,
shapes, non-finite values and data of another library or device, refused before training."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import XOR_T, XOR_X, blobs, host_weights

import xpnet
from xpnet.backend import BackendError
from xpnet.inputs import is_classification, prepare, to_net


def test_prepare_moves_casts_and_one_hot_codes(backend, dtype):
    net = xpnet.MLP([2, 3, 3], backend=backend, dtype=dtype)
    X, T = prepare(net, XOR_X.astype(np.int32), np.array([0, 2, 1, 2]))
    for a in (X, T):
        placed = xpnet.backend_of(a)
        assert (placed.name, str(placed.device)) == (backend.name, str(backend.device))
        assert a.dtype == backend.dtype(dtype)
    np.testing.assert_array_equal(xpnet.to_numpy(X), XOR_X)
    np.testing.assert_array_equal(xpnet.to_numpy(T), np.eye(3)[[0, 2, 1, 2]])


def test_prepare_names_the_data_in_its_errors():
    net = xpnet.MLP([2, 2, 1])
    with pytest.raises(ValueError, match=r"X \(validation data\) has no samples"):
        prepare(net, np.zeros((0, 2)), np.zeros((0, 1)), "validation data")


def test_to_net_passes_the_nets_own_arrays_and_copies_numpy(backend):
    net = xpnet.MLP([2, 1], backend=backend)
    own = backend.from_host(np.zeros((3, 2), dtype=np.float32))
    assert to_net(net, own, "X") is own
    moved = to_net(net, [[1.0, 2.0]], "X")
    assert xpnet.backend_of(moved).name == backend.name and moved.dtype == net.dtype


def test_is_classification_means_targets_of_0_and_1(backend):
    assert is_classification(backend.from_host(np.eye(3)), backend)
    assert is_classification(backend.from_host(XOR_T), backend)
    assert not is_classification(backend.from_host(XOR_T * 0.5 + 0.2), backend)


def test_integer_inputs_and_label_targets_follow_the_documented_casts():
    X, labels = blobs()
    X_int = np.round(X * 4).astype(np.int32)
    nets = [xpnet.MLP([4, 5, 3], seed=0) for _ in range(2)]
    xpnet.fit(nets[0], X_int, labels, epochs=2, batch_size=8)
    xpnet.fit(nets[1], X_int.astype(np.float32), np.eye(3)[labels], epochs=2, batch_size=8)
    for k, v in host_weights(nets[0]).items():
        np.testing.assert_array_equal(v, host_weights(nets[1])[k])


def test_a_single_output_takes_1d_targets_as_a_column():
    net_a, net_b = xpnet.MLP([2, 3, 1], seed=0), xpnet.MLP([2, 3, 1], seed=0)
    xpnet.fit(net_a, XOR_X, XOR_T[:, 0], epochs=3)
    xpnet.fit(net_b, XOR_X, XOR_T, epochs=3)
    for k, v in host_weights(net_a).items():
        np.testing.assert_array_equal(v, host_weights(net_b)[k])


@pytest.mark.parametrize("where", ["X", "T"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_the_data_is_refused_before_training(backend, where, bad):
    X, T = XOR_X.copy(), XOR_T.copy()
    (X if where == "X" else T)[1, 0] = bad
    net = xpnet.MLP([2, 2, 1], backend=backend)
    before = host_weights(net)
    with pytest.raises(ValueError, match=rf"{where} \(training data\) contains 1 NaN or infinite"):
        xpnet.fit(net, X, T, epochs=1)
    for k, v in host_weights(net).items():
        np.testing.assert_array_equal(v, before[k])


def test_finite_values_beyond_float32_are_not_called_nan_or_infinite():
    X = XOR_X.astype(np.float64)
    X[2, 1] = 1e40
    net = xpnet.MLP([2, 2, 1])
    with pytest.raises(ValueError, match=r"X \(training data\) has 1 finite value beyond"):
        xpnet.fit(net, X, XOR_T, epochs=1)
    with pytest.raises(ValueError, match=r"1e\+40 at row 2, column 1; rescale the data or train"):
        xpnet.fit(net, X, XOR_T, epochs=1)
    xpnet.fit(xpnet.MLP([2, 2, 1], dtype="float64"), X, XOR_T, epochs=1)  # float64 holds it


def test_targets_of_the_wrong_shape_are_refused():
    net = xpnet.MLP([2, 2, 3])
    with pytest.raises(ValueError, match=r"T \(training data\) has shape \(4, 2\).*\(4, 3\)"):
        xpnet.fit(net, XOR_X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"has shape \(3, 3\).*\(4, 3\)"):
        xpnet.fit(net, XOR_X, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"class labels must lie in 0\.\.2.*got 0\.\.5"):
        xpnet.fit(net, XOR_X, np.array([0, 1, 5, 2]))
    with pytest.raises(ValueError, match="integer class labels, got fractional"):
        xpnet.fit(net, XOR_X, np.array([0.0, 1.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"expects \(batch, 2\): 2 features per sample, got 3"):
        xpnet.fit(net, np.zeros((4, 3)), np.array([0, 1, 1, 2]))


def test_data_of_another_library_or_device_is_refused_not_copied():
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    net = xpnet.MLP([2, 2, 1])
    with pytest.raises(BackendError, match=r"X \(training data\) is a torch array.*numpy"):
        xpnet.fit(net, torch.tensor(XOR_X), XOR_T)
    net_d1 = xpnet.MLP([2, 2, 1], backend="array_api_strict", device="device1")
    T_cpu = xps.asarray(XOR_T, device=xps.Device("CPU_DEVICE"))
    with pytest.raises(BackendError, match=r"T \(training data\) is on device .*CPU_DEVICE"):
        xpnet.fit(net_d1, XOR_X, T_cpu)
