"""The training toolkit on the command line (issue 9): weight decay, AdamW, clipping,
learning-rate schedules with warmup, early stopping (and its exact resume), and progress as
plain log lines off a terminal."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import xpnet
from xpnet.cli import main
from xpnet.data import load_dataset, load_digits, train_test_split
from xpnet.optim import SGD
from xpnet.optim.schedules import Step


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    digits = load_digits()
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, X=digits.X[:300], y=digits.y[:300])
    return path


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_decay_clipping_and_a_schedule_train_as_the_library_does(capsys, small, tmp_path):
    """The CLI's run equals xpnet.fit with SGD(weight_decay, clip_norm, Step with warmup) on
    the same split, and history.csv's lr column holds each epoch's rate."""
    argv = ["train", "--data", small, "--hidden", "8", "--dtype", "float64", "--epochs", "4"]
    argv += ["--optimizer", "sgd", "--lr", "0.3", "--weight-decay", "0.01", "--clip-norm", "0.5"]
    argv += ["--lr-schedule", "step", "--warmup-epochs", "2", "--val-fraction", "0"]
    status, out, _ = run(capsys, *argv, "--out", tmp_path / "r")
    assert status == 0
    assert "sgd lr 0.3, weight decay 0.01, clip norm 0.5, step schedule, 2 warmup epochs" in out
    assert "(610 parameters, seed 0)" in out  # (64 + 1) * 8 + (8 + 1) * 10
    rows = history(tmp_path / "r")
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    train, _ = train_test_split(load_dataset(str(small)), 0.2, 0)
    net = xpnet.MLP([64, 8, 10], output="identity", dtype="float64", seed=0)
    opt = SGD(lr=0.3, weight_decay=0.01, clip_norm=0.5, schedule=Step(warmup_epochs=2))
    xpnet.fit(net, train.X, train.y, loss="softmax_ce", optimizer=opt, epochs=4, batch_size=32)
    got = xpnet.load(tmp_path / "r", backend="numpy").state_dict()
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    # without the decay the weights differ: the option reached the optimizer
    plain = [a for a in argv if a not in ("--weight-decay", "0.01")]
    assert run(capsys, *plain, "--out", tmp_path / "p")[0] == 0
    other = xpnet.load(tmp_path / "p", backend="numpy").state_dict()
    assert not np.allclose(other["W1"], got["W1"])


def test_adamw_decays_by_default_and_adam_does_not(capsys, small, tmp_path):
    base = ["train", "--data", small, "--hidden", "4", "--epochs", "1"]
    assert run(capsys, *base, "--optimizer", "adamw", "--out", tmp_path / "w")[0] == 0
    assert run(capsys, *base, "--out", tmp_path / "a")[0] == 0
    adamw = xpnet.load_checkpoint(tmp_path / "w", backend="numpy").optimizer
    adam = xpnet.load_checkpoint(tmp_path / "a", backend="numpy").optimizer
    assert type(adamw).__name__ == "AdamW" and adamw.weight_decay == 0.01 and adamw.lr == 0.01
    assert type(adam).__name__ == "Adam" and adam.weight_decay == 0.0


def test_cosine_reaches_zero_at_the_last_epoch(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "4", "--epochs", "5", "--lr", "0.02"]
    assert run(capsys, *argv, "--lr-schedule", "cosine", "--out", tmp_path / "c")[0] == 0
    lrs = [float(r["lr"]) for r in history(tmp_path / "c")]
    expected = [0.01 * (1 + np.cos(np.pi * e / 5)) for e in range(5)]
    assert lrs == pytest.approx(expected)


# lr 0.1 on 300 digits: the validation loss is best in epoch 11, and 2 worse epochs follow
STOPPING = ["--data", "{small}", "--hidden", "16", "--lr", "0.1", "--dtype", "float64"]


def stopping_args(small):
    return ["train", *(a.format(small=small) for a in STOPPING), "--early-stopping", "2"]


def test_early_stopping_keeps_the_best_epoch(capsys, small, tmp_path):
    status, out, _ = run(capsys, *stopping_args(small), "--epochs", "20", "--out", tmp_path / "r")
    assert status == 0 and "after 13 epochs" in out and "best.safetensors" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["epochs"], metrics["stopped_early"]) == (11, 13, True)
    val = [float(r["val_loss"]) for r in history(tmp_path / "r")]
    assert int(np.argmin(val)) + 1 == 11
    # evaluate and predict use the best epoch's net; the checkpoint holds the last (to resume)
    status, out, _ = run(capsys, "evaluate", tmp_path / "r")
    assert status == 0 and "epoch 11," in out
    assert xpnet.load_checkpoint(tmp_path / "r", backend="numpy").epoch == 13
    best = xpnet.load(tmp_path / "r" / "best.safetensors", backend="numpy")
    _, test = train_test_split(load_dataset(str(small)), 0.2, 0)
    scored = xpnet.evaluate(best, test.X, test.y, loss=xpnet.SoftmaxCrossEntropyLoss())
    assert metrics["test_loss"] == pytest.approx(scored["loss"], rel=1e-12)


def test_an_early_stopping_run_resumes_exactly(capsys, small, tmp_path):
    """Stopped after epoch 12 (best 11, one worse epoch), it resumes with the stopper's count
    and epoch 11's weights: it stops at 13 with the uninterrupted run's best weights."""
    argv = stopping_args(small)
    assert run(capsys, *argv, "--epochs", "20", "--out", tmp_path / "whole")[0] == 0
    assert run(capsys, *argv, "--epochs", "12", "--out", tmp_path / "r")[0] == 0
    status, out, _ = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "20")
    assert status == 0 and "after 13 epochs" in out
    for name in ("checkpoint.safetensors", "best.safetensors"):
        a = xpnet.load(tmp_path / "whole" / name, backend="numpy").state_dict()
        b = xpnet.load(tmp_path / "r" / name, backend="numpy").state_dict()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "r" / "metrics.json").read_text())
    for key in ("best_epoch", "test_loss", "test_accuracy", "epochs"):
        assert resumed[key] == whole[key], key


def test_early_stopping_without_validation_is_refused_in_one_line(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--early-stopping", "3", "--val-fraction", "0"]
    status, _, err = run(capsys, *argv, "--out", tmp_path / "r")
    assert status == 2 and len(err.splitlines()) == 1
    assert "--early-stopping watches the validation loss" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option", [["--weight-decay", "0.1"], ["--lr-schedule", "cosine"]])
def test_the_new_options_cannot_change_on_resume(capsys, small, tmp_path, option):
    assert run(capsys, "train", "--data", small, "--epochs", "1", "--out", tmp_path / "r")[0] == 0
    status, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2", *option)
    assert status == 2 and f"{option[0]} cannot change when resuming" in err


def test_off_a_terminal_each_epoch_is_one_log_line(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "4", "--epochs", "5"]
    status, _, err = run(capsys, *argv, "--out", tmp_path / "a")
    lines = err.splitlines()
    assert status == 0 and [line.split(":")[0] for line in lines] == [
        f"epoch {e}/5" for e in range(1, 6)
    ]
    rows = history(tmp_path / "a")
    assert f"loss {float(rows[2]['loss']):.4g}, accuracy" in lines[2]
    assert lines[2].endswith(" s)") and "val_loss" in lines[2] and "lr 0.01" in lines[2]
    status, _, err = run(capsys, *argv, "--log-every", "2", "--out", tmp_path / "b")
    assert [line.split(":")[0] for line in err.splitlines()] == [
        "epoch 2/5",
        "epoch 4/5",
        "epoch 5/5",
    ]
    status, out, err = run(capsys, *argv, "--quiet", "--out", tmp_path / "c")
    assert (status, err) == (0, "") and "test accuracy" in out
    # --quiet and --log-every are not part of the run: they may be given on resume
    status, _, err = run(capsys, "train", "--resume", tmp_path / "c", "--epochs", "6", "--quiet")
    assert (status, err) == (0, "")
