"""fit, evaluate and predict: agreement across backends, the data rules and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import XOR_T, XOR_X, blobs, host_weights

import xpnet
from xpnet.backend import count_nonfinite


def test_five_epochs_agree_across_backends_to_the_dtypes_tolerance(backend, dtype):
    X, labels = blobs()
    T = np.eye(3)[labels]
    kwargs = dict(optimizer=None, epochs=5, batch_size=16, seed=7, validation=(X, T))

    def train(on):
        net = xpnet.MLP([4, 8, 3], backend=on, dtype=dtype, seed=3)
        hist = xpnet.fit(net, X, T, **{**kwargs, "optimizer": xpnet.SGD(0.5, momentum=0.9)})
        return net, hist

    ref_net, ref_hist = train("numpy")
    net, hist = train(backend)
    tol = 1000 * np.finfo(dtype).eps
    for k, v in host_weights(ref_net).items():
        np.testing.assert_allclose(host_weights(net)[k], v, rtol=tol, atol=tol)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(hist[key], ref_hist[key], rtol=tol, atol=tol)
    assert ref_hist["loss"][-1] < ref_hist["loss"][0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xor_is_learned(dtype):
    """400 epochs on NumPy; every backend trains as NumPy does (the test above)."""
    net = xpnet.MLP([2, 4, 1], backend="numpy", dtype=dtype, seed=1)
    hist = xpnet.fit(
        net, XOR_X, XOR_T, optimizer=xpnet.SGD(lr=2.0, momentum=0.9), epochs=400, batch_size=4
    )
    assert hist.last["accuracy"] == 1.0
    assert hist.last["loss"] < 0.01
    Y = xpnet.to_numpy(xpnet.predict(net, XOR_X))
    np.testing.assert_array_equal(Y.round(), XOR_T)


def test_history_records_every_epoch():
    X, labels = blobs()
    net = xpnet.MLP([4, 6, 3], output="identity")
    calls = []
    hist = xpnet.fit(
        net,
        X,
        labels,
        loss=xpnet.SoftmaxCrossEntropyLoss(),
        optimizer=xpnet.Adam(0.05),
        epochs=4,
        batch_size=10,
        validation=(X, labels),
        callbacks=[lambda epoch, record: calls.append((epoch, record["loss"]))],
    )
    assert len(hist) == 4 and hist["epoch"] == [1, 2, 3, 4]
    assert set(hist.keys()) == {
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    }
    assert calls == list(zip(hist["epoch"], hist["loss"], strict=True))
    final = xpnet.evaluate(net, X, labels, loss=xpnet.SoftmaxCrossEntropyLoss())
    assert final["loss"] == pytest.approx(hist.last["val_loss"], rel=1e-6)
    assert final["accuracy"] == hist.last["val_accuracy"] > 0.9


def test_a_callback_returning_true_stops_training():
    net = xpnet.MLP([2, 2, 1])
    hist = xpnet.fit(net, XOR_X, XOR_T, epochs=10, callbacks=[lambda e, r: e == 3])
    assert len(hist) == 3


def test_shuffling_follows_the_seed():
    X, labels = blobs()

    def run(seed):
        net = xpnet.MLP([4, 5, 3], seed=0)
        xpnet.fit(net, X, labels, epochs=2, batch_size=8, seed=seed)
        return host_weights(net)["W1"]

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_finite_data_whose_sum_overflows_is_accepted_and_bad_entries_are_counted(backend):
    # the check sums first (scikit-learn's trick): an overflowing sum of finite values must
    # fall back to the element-wise count, which finds nothing, and bad data is counted exactly
    big = float(np.finfo(np.float32).max)
    X = np.full((4, 2), big, dtype=np.float32)
    net = xpnet.MLP([2, 2, 1], backend=backend, dtype="float32")
    xp = backend.xp
    assert count_nonfinite(xpnet.asarray(X, like=net), xp) == 0
    X[0, 0], X[2, 1], X[3, 0] = np.nan, np.inf, -np.inf
    assert count_nonfinite(xpnet.asarray(X, like=net), xp) == 3
    assert count_nonfinite(xpnet.asarray(XOR_X, like=net), xp) == 0


def test_empty_data_and_a_backwards_epoch_range_are_refused():
    net = xpnet.MLP([2, 2, 1])
    with pytest.raises(ValueError, match=r"X \(training data\) has no samples"):
        xpnet.fit(net, np.zeros((0, 2)), np.zeros((0, 1)))
    with pytest.raises(ValueError, match=r"epochs \(2\) .* initial_epoch \(3\)"):
        xpnet.fit(net, XOR_X, XOR_T, epochs=2, initial_epoch=3)
    with pytest.raises(ValueError, match=r"expects \(batch, 2\).*got a 3-D array"):
        xpnet.fit(net, np.zeros((4, 2, 1)), XOR_T)


def test_validation_accuracy_follows_the_validation_targets():
    net = xpnet.MLP([2, 2, 1])
    hist = xpnet.fit(net, XOR_X, XOR_T, epochs=1, validation=(XOR_X, XOR_T * 0.5 + 0.2))
    assert "accuracy" in hist.keys() and "val_accuracy" not in hist.keys()


def test_progress_bar_reports_samples_and_loss(capsys):
    net = xpnet.MLP([2, 2, 1])
    xpnet.fit(net, XOR_X, XOR_T, epochs=3, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "12/12" in err and "sample/s" in err
    assert "loss=0." in err and "accuracy=" in err
