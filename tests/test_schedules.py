"""Learning-rate schedules: their factors, how fit applies and records them, and how a
checkpoint carries them (settings and learned state) into a resumed run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet
from xpnet.optim import Constant, Cosine, Plateau, Step, schedule_from_config


def test_factors():
    assert [Step(every=2, gamma=0.5).factor(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cosine = Cosine(epochs=4, min_factor=0.2)
    expected = [0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(6)]
    assert [cosine.factor(e) for e in range(6)] == pytest.approx([*expected[:5], 0.2])
    warm = Constant(warmup_epochs=3)
    assert [warm.factor(e) for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert Step(every=1, gamma=0.5, warmup_epochs=1).factor(2) == 0.5  # counted after warmup


def test_plateau_cuts_after_patience_epochs_without_improvement():
    plateau = Plateau(patience=2, gamma=0.5)
    factors = []
    for loss in [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7]:
        plateau.observe({"loss": 9.9, "val_loss": loss})  # watches val_loss
        factors.append(plateau.factor(0))
    assert factors == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    plateau = Plateau(patience=1, gamma=0.1)
    plateau.observe({"loss": 1.0})  # no validation: the training loss
    plateau.observe({"loss": 1.0})
    assert plateau.factor(0) == pytest.approx(0.1)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\], got 2"):
        Step(gamma=2)
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 0"):
        Cosine(epochs=0)
    with pytest.raises(ValueError, match=r"warmup_epochs must be an integer >= 0, got -1"):
        Constant(warmup_epochs=-1)
    with pytest.raises(ValueError, match=r"unknown learning-rate schedule 'linear'"):
        schedule_from_config({"name": "linear"})


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    return X, (X[:, 0] > 0).astype(np.int64)


def test_fit_uses_and_records_each_epochs_learning_rate():
    X, y = _data()
    net = xpnet.MLP([4, 6, 2], output="identity", dtype="float64")
    opt = xpnet.SGD(lr=0.4, schedule=Step(every=2, gamma=0.5))
    hist = xpnet.fit(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss(), optimizer=opt, epochs=5)
    assert hist["lr"] == [0.4, 0.4, 0.2, 0.2, 0.1]
    # the same as training each epoch at that rate by hand
    ref = xpnet.MLP([4, 6, 2], output="identity", dtype="float64")
    for epoch, lr in enumerate(hist["lr"]):
        xpnet.fit(
            ref,
            X,
            y,
            loss=xpnet.SoftmaxCrossEntropyLoss(),
            optimizer=xpnet.SGD(lr=lr),
            epochs=epoch + 1,
            initial_epoch=epoch,
        )
    for k, p in net.parameters().items():
        np.testing.assert_array_equal(p, ref.parameters()[k])


def test_a_checkpoint_carries_the_schedule_and_its_state(tmp_path):
    """Four epochs straight equal two, save, load, two more: a plateau schedule included."""
    X, y = _data()
    loss = xpnet.SoftmaxCrossEntropyLoss()

    def make():
        net = xpnet.MLP([4, 6, 2], output="identity", dtype="float64")
        plateau = Plateau(patience=1, gamma=0.5, monitor="loss", threshold=0.5)
        return net, xpnet.Adam(lr=0.05, schedule=plateau)

    net, opt = make()
    straight = xpnet.fit(net, X, y, loss=loss, optimizer=opt, epochs=4, batch_size=8)
    assert len(set(straight["lr"])) > 1  # the plateau did cut the rate

    net2, opt2 = make()
    first = xpnet.fit(net2, X, y, loss=loss, optimizer=opt2, epochs=2, batch_size=8)
    xpnet.save(net2, tmp_path / "run", optimizer=opt2, epoch=2, history=first.records)
    ck = xpnet.load_checkpoint(tmp_path / "run", backend="numpy")
    assert isinstance(ck.optimizer.schedule, Plateau)
    assert ck.optimizer.schedule.state_dict() == opt2.schedule.state_dict()
    rest = xpnet.fit(
        ck.net, X, y, loss=loss, optimizer=ck.optimizer, epochs=4, initial_epoch=2, batch_size=8
    )
    assert first["lr"] + rest["lr"] == straight["lr"]
    for k, p in net.parameters().items():
        np.testing.assert_array_equal(ck.net.parameters()[k], p)


def test_plateau_refuses_a_monitor_the_records_lack():
    """Issue 21, item 5: Plateau(monitor="acc") (a typo) was accepted and never fired."""
    plateau = xpnet.optim.Plateau(monitor="acc")
    with pytest.raises(ValueError, match=r"watches 'acc', which the training records lack"):
        plateau.observe({"epoch": 1, "loss": 1.0, "accuracy": 0.5})
    fallback = xpnet.optim.Plateau()  # val_loss, without validation: the training loss
    fallback.observe({"epoch": 1, "loss": 1.0})
    assert fallback.best == 1.0


def test_plateau_stops_lowering_at_its_floor():
    plateau = xpnet.optim.Plateau(patience=1, gamma=0.1, min_factor=0.05)
    for epoch in range(1, 6):
        plateau.observe({"epoch": epoch, "val_loss": 1.0})
    assert plateau.scale == 0.05
    assert plateau.config()["min_factor"] == 0.05  # saved with the run
    with pytest.raises(ValueError, match="min_factor"):
        xpnet.optim.Plateau(min_factor=2.0)
