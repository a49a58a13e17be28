"""Scoring (xpnet.scoring): predicted labels, correct counts, batches, the tally of a loss
over batches, and `evaluate` and `predict` that batch without changing the answer."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.scoring import Tally, batch_bounds, correct_count, predicted_labels


def test_predicted_labels(xp, backend):
    several = backend.from_host(np.array([[0.2, 0.7, 0.1], [0.9, 0.05, 0.05]]))
    one = backend.from_host(np.array([[0.49], [0.5], [0.51]]))
    assert xpnet.to_numpy(predicted_labels(several, xp)).tolist() == [1, 0]
    assert xpnet.to_numpy(predicted_labels(one, xp)).tolist() == [0, 1, 1]


def test_correct_count_compares_predicted_labels_of_outputs_and_targets(backend):
    xp = backend.xp
    Y = backend.from_host(np.array([[0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4]]))
    T = backend.from_host(np.eye(3)[[1, 2, 2]])
    assert int(xpnet.to_numpy(correct_count(Y, T, xp))) == 2


@pytest.mark.parametrize(("n", "size"), [(10, 4), (8, 4), (3, 5), (1, 1)])
def test_batches_cover_every_row_once_with_a_short_last_one(n, size):
    bounds = batch_bounds(n, size)
    assert [i for a, b in bounds for i in range(a, b)] == list(range(n))
    assert all(b - a == size for a, b in bounds[:-1]) and 0 < bounds[-1][1] - bounds[-1][0] <= size


def test_the_tally_weighs_each_batch_loss_by_its_rows(backend):
    loss = xpnet.MSELoss()
    tally = Tally(loss, classify=True, xp=backend.xp)
    Y, T = np.array([[0.9], [0.2], [0.6]]), np.array([[1.0], [0.0], [0.0]])
    for a, b in [(0, 2), (2, 3)]:
        tally.add(backend.from_host(Y[a:b]), backend.from_host(T[a:b]))
    summary = tally.summary()
    assert summary["loss"] == pytest.approx(np.mean((Y - T) ** 2))
    assert summary["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("batch_size", [1, 3, 4096])
def test_evaluate_and_predict_do_not_depend_on_the_batch_size(backend, batch_size):
    """With a mean loss: `evaluate` weighs each batch's value by its rows, so a summed loss
    (SSE) reports a value that grows with the batch size."""
    rng = np.random.default_rng(1)
    X, labels = rng.normal(size=(7, 4)), rng.integers(0, 3, 7)
    net = xpnet.MLP([4, 5, 3], backend=backend, dtype="float32", seed=3)
    whole = xpnet.to_numpy(xpnet.predict(net, X, batch_size=4096))
    np.testing.assert_allclose(xpnet.to_numpy(xpnet.predict(net, X, batch_size)), whole, rtol=1e-6)
    expected = {
        "loss": np.mean((whole - np.eye(3)[labels]) ** 2),
        "accuracy": float(np.mean(whole.argmax(axis=1) == labels)),
    }
    got = xpnet.evaluate(net, X, labels, loss=xpnet.MSELoss(), batch_size=batch_size)
    assert got == pytest.approx(expected, rel=1e-5)
