"""TensorBoard logs (`xpnet.TensorBoard`, `xpnet train --tensorboard`): TensorBoard's own
event reader reads back one scalar per epoch per metric, with the values of history.csv, and
the weight-gradient norms `xpnet vanishing` measures."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run, run_python_blocks

import xpnet
from xpnet.diagnostics import layer_gradient_norms
from xpnet.layers.sequence import leaves

pytest.importorskip(
    "tensorboard", reason="the tensorboard extra is not installed: pip install 'xpnet[tensorboard]'"
)
from tensorboard.backend.event_processing import event_accumulator

FLOAT32 = 1e-6  # scalars are stored as float32


def scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard reads the event files in logdir."""
    reader = event_accumulator.EventAccumulator(str(logdir))
    reader.Reload()
    return {
        tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]
    }


def test_train_logs_every_column_of_history_csv_once_per_epoch(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "16,16", "--epochs", "4", "--quiet"]
    argv += ["--out", tmp_path / "r", "--tensorboard", tmp_path / "tb", "--lr-schedule", "cosine"]
    assert run(capsys, *argv)[0] == 0
    with open(tmp_path / "r" / "history.csv", newline="") as file:
        history = list(csv.DictReader(file))
    logged = scalars(tmp_path / "tb")
    columns = [c for c in history[0] if c != "epoch"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(columns)
    for column in columns:
        steps = [step for step, _ in logged[column]]
        assert steps == [1, 2, 3, 4], column
        want = [float(row[column]) for row in history]
        np.testing.assert_allclose([v for _, v in logged[column]], want, rtol=FLOAT32)
    norms = sorted(tag for tag in logged if tag.startswith("gradient_norm/"))
    assert norms == ["gradient_norm/W1", "gradient_norm/W2", "gradient_norm/W3"]
    assert all(len(logged[tag]) == 4 and logged[tag][-1][1] > 0 for tag in norms)


def test_the_callback_logs_the_probe_gradient_norms_and_leaves_training_alone(tmp_path):
    digits = xpnet.data.load_digits()
    X, y = digits.X[:200], digits.y[:200]

    def net():
        layers = [xpnet.Linear(64, 16), xpnet.BatchNorm(16), xpnet.Tanh(), xpnet.Dropout(0.2)]
        return xpnet.Sequential([*layers, xpnet.Linear(16, 10)], seed=0)

    def train(net, callbacks):
        loss = xpnet.SoftmaxCrossEntropyLoss()
        return xpnet.fit(net, X, y, loss=loss, optimizer="adam", epochs=3, callbacks=callbacks)

    plain = net()
    train(plain, [])
    logged_net = net()
    loss = xpnet.SoftmaxCrossEntropyLoss()
    with xpnet.TensorBoard(tmp_path, net=logged_net, probe=(X[:32], y[:32]), loss=loss) as board:
        history = train(logged_net, [board])
    for key, value in plain.state_dict().items():  # the probe changed nothing
        np.testing.assert_array_equal(xpnet.to_numpy(logged_net.state_dict()[key]), value)
    logged = scalars(tmp_path)
    np.testing.assert_allclose([v for _, v in logged["loss"]], history["loss"], rtol=FLOAT32)
    logged_net.eval()
    expected = layer_gradient_norms(logged_net, X[:32], y[:32], loss)
    names = [
        f"gradient_norm/{leaf.parameter_names['W']}"
        for leaf in leaves(logged_net.layers)
        if isinstance(leaf, xpnet.Linear)
    ]
    assert names == ["gradient_norm/W1", "gradient_norm/W3"]
    np.testing.assert_allclose([logged[n][-1][1] for n in names], expected, rtol=FLOAT32)


def test_gradient_norms_need_a_net_and_a_probe(tmp_path):
    with pytest.raises(ValueError, match="both net= and probe="):
        xpnet.TensorBoard(tmp_path, net=xpnet.MLP([2, 2]))


def test_without_the_tensorboard_package_train_says_how_to_get_it(
    capsys, small, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    argv = ["train", "--data", small, "--epochs", "1", "--out", tmp_path / "r"]
    status, _, err = run(capsys, *argv, "--tensorboard", tmp_path / "tb")
    assert status == 2 and "pip install 'xpnet[tensorboard]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # refused before the run was made


def test_the_docs_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_python_blocks(Path(__file__).parents[1] / "docs" / "tensorboard.md")
    assert [step for step, _ in scalars(tmp_path / "tb" / "digits")["loss"]] == [1, 2, 3, 4, 5]
