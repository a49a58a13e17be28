"""`xpnet train`'s training options: weight decay, AdamW, clipping, learning-rate schedules
with warmup, early stopping (and its exact resume), progress as plain log lines off a
terminal, config.json, and test data given apart from the training data."""

from __future__ import annotations

import csv
import json
import shlex
from unittest import mock

import numpy as np
import pytest
from helpers import run

import xpnet
import xpnet.cli.train
from xpnet.data import load_dataset, load_digits, train_test_split
from xpnet.optim import SGD
from xpnet.optim.schedules import Step


def history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_decay_clipping_and_a_schedule_train_as_the_library_does(capsys, small, tmp_path):
    """The CLI's run equals xpnet.fit with SGD(weight_decay, clip_norm, Step with warmup) on
    the same split, and history.csv's lr column holds each epoch's rate."""
    argv = ["train", "--data", small, "--hidden", "8", "--dtype", "float64", "--epochs", "4"]
    argv += ["--backend", "numpy"]  # as the library's default, which it is compared with
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


# -- readable runs and Ctrl-C (issue 9, items 8 and 9) ------------------------------------------
def test_ctrl_c_writes_the_run_and_prints_the_exact_resume_command(
    capsys, small, tmp_path, monkeypatch
):
    argv = ["train", "--data", small, "--hidden", "8", "--dtype", "float64", "--epochs", "5"]
    assert run(capsys, *argv, "--out", tmp_path / "whole", "--quiet")[0] == 0
    real = xpnet.cli.train.fit

    def interrupted_in_epoch_3(*args, **kwargs):
        def ctrl_c(epoch, record):
            if epoch == 2:
                raise KeyboardInterrupt

        kwargs["callbacks"] = [*kwargs["callbacks"], ctrl_c]  # after the checkpoint's
        return real(*args, **kwargs)

    monkeypatch.setattr("xpnet.cli.train.fit", interrupted_in_epoch_3)
    out_dir = tmp_path / "my run"
    status, _, err = run(capsys, *argv, "--out", out_dir, "--quiet")
    assert status == 130 and len(err.splitlines()) == 1
    command = f"xpnet train --resume '{out_dir}' --epochs 5"
    assert err.rstrip().endswith(f"continue with: {command}"), err
    assert f"the checkpoint in {out_dir} holds epoch 2" in err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert (metrics["interrupted"], metrics["diverged"], metrics["epochs"]) == (True, False, 2)
    assert metrics["test_accuracy"] is None
    assert [r["epoch"] for r in history(out_dir)] == ["1", "2"]
    monkeypatch.setattr("xpnet.cli.train.fit", real)
    status, _, _ = run(capsys, *shlex.split(command)[1:], "--quiet")  # as printed
    assert status == 0
    a = xpnet.load(tmp_path / "whole", backend="numpy").state_dict()
    b = xpnet.load(out_dir, backend="numpy").state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert json.loads((out_dir / "metrics.json").read_text())["interrupted"] is False


def test_every_run_has_a_config_json(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "1", "--weight-decay", "0.5"]
    assert run(capsys, *argv, "--out", tmp_path / "r")[0] == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    options = xpnet.load_checkpoint(tmp_path / "r", backend="numpy").metadata["options"]
    assert config["options"] == options
    assert config["options"]["weight_decay"] == 0.5 and config["options"]["data"] == str(small)
    assert len(config["options"]["data_sha256"]) == 64
    assert config["parameters"] == 610 and config["net"]["sizes"] == [64, 8, 10]
    assert config["versions"]["numpy"] == np.__version__ and config["processes"] == 1
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2")[0] == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["options"]["epochs"] == 2


# -- datasets (issue 9, item 6) -----------------------------------------------------------------
def test_test_data_is_scored_instead_of_a_split(capsys, small, tmp_path):
    digits = load_digits()
    np.savez(tmp_path / "test.npz", X=digits.X[300:400], y=digits.y[300:400])
    argv = ["train", "--data", small, "--test-data", tmp_path / "test.npz", "--hidden", "8"]
    status, out, _ = run(capsys, *argv, "--epochs", "2", "--out", tmp_path / "r", "--quiet")
    assert status == 0 and "270 train / 30 validation / 100 test samples (from test)" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (270, 30, 100)
    net = xpnet.load(tmp_path / "r", backend="numpy")
    scored = xpnet.evaluate(
        net, digits.X[300:400], digits.y[300:400], loss=xpnet.SoftmaxCrossEntropyLoss()
    )
    assert metrics["test_accuracy"] == scored["accuracy"]
    status, out, _ = run(capsys, "evaluate", tmp_path / "r")
    assert (
        status == 0
        and f"(the run's --test-data, 100): accuracy {100 * scored['accuracy']:.2f} %" in out
    )
    # the test file is part of the run: it may not change, nor be changed on resume
    np.savez(tmp_path / "test.npz", X=digits.X[400:500], y=digits.y[400:500])
    status, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3")
    assert status == 2 and "changed since the run" in err and "test.npz" in err


def test_test_data_of_another_shape_is_refused_in_one_line(capsys, small, tmp_path):
    np.savez(tmp_path / "other.npz", X=np.zeros((5, 3)), y=np.arange(5) % 2)
    argv = ["train", "--data", small, "--test-data", tmp_path / "other.npz"]
    status, _, err = run(capsys, *argv, "--out", tmp_path / "r")
    assert status == 2 and len(err.splitlines()) == 1
    assert "has 3 features per sample but --data" in err and "has 64" in err
    assert not (tmp_path / "r").exists()


def write_idx(folder, prefix, n, seed):
    """A tiny MNIST-style pair of IDX files: n 4 x 4 images of 3 classes, and their labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = (rng.random((n, 4, 4)) * 60 + y[:, None, None] * 60).astype(np.uint8)
    for name, a in ((f"{prefix}-images-idx3-ubyte", X), (f"{prefix}-labels-idx1-ubyte", y)):
        header = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
        (folder / name).write_bytes(header + a.astype(np.uint8).tobytes())
    return X.reshape(n, 16) / 255.0, y


def test_an_idx_directory_tests_on_its_own_t10k_part(capsys, tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx(idx, "train", 60, 0)
    X_test, y_test = write_idx(idx, "t10k", 20, 1)
    argv = ["train", "--data", idx, "--hidden", "4", "--epochs", "2", "--quiet"]
    status, out, _ = run(capsys, *argv, "--out", tmp_path / "r")
    assert status == 0 and "54 train / 6 validation / 20 test samples (its own test part" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (54, 6, 20)
    net = xpnet.load(tmp_path / "r", backend="numpy")
    scored = xpnet.evaluate(net, X_test, y_test, loss=xpnet.SoftmaxCrossEntropyLoss())
    assert metrics["test_loss"] == pytest.approx(scored["loss"], rel=1e-6)
    status, out, _ = run(capsys, "evaluate", tmp_path / "r")
    assert status == 0 and "(the test split, 20)" in out
    # a run saved before the own split (no own_split option) resumes with the pooled 80/20
    ck = xpnet.load_checkpoint(tmp_path / "r", backend="numpy")
    options = {k: v for k, v in ck.metadata["options"].items() if k != "own_split"}
    xpnet.save(ck.net, tmp_path / "r", {"options": options}, optimizer=ck.optimizer, epoch=2)
    status, out, _ = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3", "--quiet")
    assert status == 0 and "/ 15 test samples (X stored" in out  # 20 % of 80, stratified


# -- dropout, normalization and residual blocks (issue 22) ---------------------------------------
CURES = ["--dropout", "0.2", "--norm", "batch", "--residual"]


def cures_args(small, epochs):
    argv = ["train", "--data", small, "--hidden", "8,8", "--dtype", "float64", "--quiet"]
    return [*argv, "--backend", "numpy", "--val-fraction", "0", "--epochs", str(epochs)]


def test_dropout_norm_and_residual_train_the_net_the_library_builds(capsys, small, tmp_path):
    """The run trains MLP(dropout=0.2, norm="batch", residual=True) as xpnet.fit does on the
    same split (dropout masks and batch statistics included), and saves the three options."""
    assert run(capsys, *cures_args(small, 3), *CURES, "--out", tmp_path / "r")[0] == 0
    options = json.loads((tmp_path / "r" / "config.json").read_text())["options"]
    assert (options["dropout"], options["norm"], options["residual"]) == (0.2, "batch", True)
    train, _ = train_test_split(load_dataset(str(small)), 0.2, 0)
    blocks = {"dropout": 0.2, "norm": "batch", "residual": True}
    net = xpnet.MLP([64, 8, 8, 10], output="identity", dtype="float64", seed=0, **blocks)
    optimizer = xpnet.Adam(lr=0.01)
    xpnet.fit(net, train.X, train.y, loss="softmax_ce", optimizer=optimizer, epochs=3)
    got = xpnet.load(tmp_path / "r", backend="numpy")
    assert got.config() == net.config()
    expected = net.state_dict()
    assert got.state_dict().keys() == expected.keys() and "running_mean2" in expected
    for name, value in expected.items():
        np.testing.assert_array_equal(got.state_dict()[name], value, err_msg=name)
    # without dropout the weights differ: the option reached the net
    assert run(capsys, *cures_args(small, 3), *CURES[2:], "--out", tmp_path / "p")[0] == 0
    other = xpnet.load(tmp_path / "p", backend="numpy").state_dict()
    assert not np.allclose(other["W1"], expected["W1"])


def test_a_run_with_dropout_and_batch_norm_resumes_exactly(capsys, small, tmp_path):
    """Two epochs and a third resumed equal three straight: the same dropout masks, and the
    running statistics saved and restored."""
    argv = [*cures_args(small, 3), *CURES]
    assert run(capsys, *argv, "--out", tmp_path / "whole")[0] == 0
    assert run(capsys, *cures_args(small, 2), *CURES, "--out", tmp_path / "r")[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "3")[0] == 0
    a = xpnet.load(tmp_path / "whole", backend="numpy").state_dict()
    b = xpnet.load(tmp_path / "r", backend="numpy").state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_run_saved_before_the_cures_resumes_as_a_plain_mlp(capsys, small, tmp_path):
    """A run whose options lack dropout, norm and residual resumes as the plain MLP it was."""
    argv = cures_args(small, 2)
    assert run(capsys, *argv, "--out", tmp_path / "whole")[0] == 0
    assert run(capsys, *cures_args(small, 1), "--out", tmp_path / "r")[0] == 0
    ck = xpnet.load_checkpoint(tmp_path / "r")
    old = dict(ck.metadata["options"])
    del old["dropout"], old["norm"], old["residual"]
    xpnet.save(
        ck.net,
        tmp_path / "r",
        {"options": old},
        optimizer=ck.optimizer,
        epoch=1,
        seed=0,
        history=ck.history,
        classes=ck.classes,
    )
    resume = ["train", "--resume", tmp_path / "r", "--epochs", "2", "--quiet"]
    assert run(capsys, *resume) == (0, mock.ANY, "")
    options = json.loads((tmp_path / "r" / "config.json").read_text())["options"]
    assert (options["dropout"], options["norm"], options["residual"]) == (0.0, None, False)
    a = xpnet.load(tmp_path / "whole", backend="numpy").state_dict()
    b = xpnet.load(tmp_path / "r", backend="numpy").state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("option", [["--dropout", "0.1"], ["--norm", "layer"], ["--residual"]])
def test_the_blocks_cannot_change_on_resume(capsys, small, tmp_path, option):
    assert run(capsys, *cures_args(small, 1), "--out", tmp_path / "r")[0] == 0
    status, _, err = run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "2", *option)
    assert status == 2 and f"{option[0]} cannot change when resuming" in err


@pytest.mark.parametrize("value", ["1", "-0.1", "x"])
def test_a_dropout_outside_0_to_1_is_refused(capsys, small, value):
    status, _, err = run(capsys, "train", "--data", small, "--dropout", value)
    assert status == 2 and "argument --dropout: expected a fraction from 0 to below 1" in err


class _Rank0Of2:
    """Rank 0 of a group of 2, whose abort exits as MPI_Abort would."""

    rank, size = 0, 2

    def abort(self, code):
        raise SystemExit(code)

    def barrier(self):
        pass


def test_batch_norm_in_data_parallel_training_is_refused_up_front(
    capsys, small, tmp_path, monkeypatch
):
    """`mpiexec -n 2 xpnet train --norm batch`: one line, exit 2, before the run directory is
    made (fit would refuse the batch statistics too, but only once training starts)."""
    monkeypatch.setattr(xpnet.cli.parallel, "_group", _Rank0Of2())
    with pytest.raises(SystemExit) as ended:
        run(capsys, *cures_args(small, 1), "--norm", "batch", "--out", tmp_path / "r")
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "xpnet train: error (rank 0 of 2): --norm batch keeps batch statistics, which would "
        "differ from process to process in data-parallel training (2 processes); use --norm "
        "layer, or train in one process\n"
    )
    assert not (tmp_path / "r").exists()


def test_plateau_without_a_validation_set_is_refused(capsys, small):
    """Issue 21, item 5: it watched nothing and never lowered the rate."""
    status, _, err = run(
        capsys, "train", "--data", small, "--lr-schedule", "plateau", "--val-fraction", "0"
    )
    assert status == 2
    assert "--lr-schedule plateau watches the validation loss" in err and "--val-fraction" in err


def test_an_exploding_but_finite_run_ends_with_a_hint(capsys, small, tmp_path):
    """Issue 21, item 10: epoch-1 loss 5e12, then chance, exited 0 without a word."""
    argv = ["--activation", "relu", "--optimizer", "sgd", "--lr", "1e4", "--epochs", "2"]
    status, _, err = run(
        capsys, "train", "--data", small, *argv, "--out", tmp_path / "r", "--quiet"
    )
    assert status == 0
    assert err.startswith("xpnet train: warning: the loss reached") and "try a lower --lr" in err
    status, _, err = run(
        capsys, "train", "--data", small, "--epochs", "2", "--out", tmp_path / "ok"
    )
    assert status == 0 and "warning" not in err


def test_after_early_stopping_the_last_line_names_the_kept_epoch(capsys, small, tmp_path):
    """Issue 21, item 24: it said "after 23 epochs" while the scores were epoch 18's."""
    argv = ["--early-stopping", "1", "--epochs", "40", "--lr", "0.5", "--out", tmp_path / "r"]
    status, out, _ = run(capsys, "train", "--data", small, *argv, "--quiet")
    best = json.loads((tmp_path / "r" / "metrics.json").read_text())["best_epoch"]
    assert status == 0 and f"(stopped early; the weights of epoch {best})" in out


@pytest.mark.parametrize("value", ["inf", "nan", "1e400"])
def test_a_learning_rate_that_is_not_finite_is_an_argument_error(capsys, value):
    """Issue 21, item 22: in argparse's `argument --lr:` form, as other bad values."""
    status, _, err = run(capsys, "train", "--lr", value)
    assert status == 2 and err.startswith("xpnet train: error: argument --lr: expected a positive")
