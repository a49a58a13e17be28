"""Early stopping: fit stops where the rule says, and the net ends with its best epoch's
parameters (those of a run stopped there), on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet


def _data():
    rng = np.random.default_rng(1)
    X, Xv = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    return X, (X[:, 0] > 0).astype(np.int64), Xv, rng.integers(0, 2, 30)  # noise to validate


def _fit(backend, epochs, **kwargs):
    X, y, Xv, yv = _data()
    net = xpnet.MLP([4, 16, 2], output="identity", backend=backend, dtype="float64", seed=3)
    hist = xpnet.fit(
        net,
        X,
        y,
        loss="softmax_ce",
        optimizer=xpnet.Adam(lr=0.05),
        epochs=epochs,
        batch_size=10,
        validation=(Xv, yv),
        **kwargs,
    )
    return net, hist


def _rule(val_losses, patience):
    """(epochs run, best epoch) by the rule, computed from an unstopped run's records."""
    best, best_epoch, wait = None, None, 0
    for epoch, value in enumerate(val_losses, start=1):
        if best is None or value < best:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return len(val_losses), best_epoch


@pytest.mark.float64
def test_stops_by_the_rule_and_keeps_the_best_epoch(backend):
    _, full = _fit(backend, 25)
    stop, best = _rule(full["val_loss"], patience=3)
    assert stop < 25, "the noisy validation set should stop training early"
    net, hist = _fit(backend, 25, early_stopping=3)
    assert len(hist) == stop and hist.best_epoch == best
    assert hist["val_loss"] == pytest.approx(full["val_loss"][:stop], rel=1e-12)
    reference, _ = _fit(backend, best)  # a run that ended at the best epoch
    for k, v in net.parameters().items():
        np.testing.assert_allclose(
            xpnet.to_numpy(v), xpnet.to_numpy(reference.parameters()[k]), rtol=1e-12
        )


def test_early_stopping_needs_what_it_watches():
    X, y, _, _ = _data()
    net = xpnet.MLP([4, 2], output="identity")
    with pytest.raises(ValueError, match=r"watches 'val_loss': give validation=\(X_val, T_val\)"):
        xpnet.fit(net, X, y, loss="softmax_ce", early_stopping=2)
    watch_loss = xpnet.EarlyStopping(patience=2, monitor="loss", restore_best=False)
    hist = xpnet.fit(net, X, y, loss="softmax_ce", epochs=3, early_stopping=watch_loss)
    assert hist.best_epoch == watch_loss.best_epoch is not None
    with pytest.raises(ValueError, match=r"patience must be an integer >= 1, got 0"):
        xpnet.EarlyStopping(patience=0)


def test_its_counters_round_trip():
    stopper = xpnet.EarlyStopping(patience=4)
    net = xpnet.MLP([2, 1])
    for epoch, value in enumerate([1.0, 0.5, 0.7, float("nan")], start=1):
        stopper.update({"epoch": epoch, "val_loss": value}, net)
    assert stopper.state_dict() == {"best": 0.5, "best_epoch": 2, "wait": 2}
    again = xpnet.EarlyStopping(patience=4)
    again.load_state_dict(stopper.state_dict())
    assert again.update({"epoch": 5, "val_loss": 0.9}, net) is False
    assert again.update({"epoch": 6, "val_loss": 0.9}, net) is True  # 4 epochs without a gain
