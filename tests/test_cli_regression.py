"""`xpnet train --task regression` (issue 21, item 29): numeric targets, a linear output, MSE
by default, R² in metrics.json, evaluate and predict; runs saved before it stay classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run

import xpnet
from xpnet.r2 import r2_score


@pytest.fixture
def targets(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    path = tmp_path / "reg.npz"
    np.savez(path, X=X, y=X @ [1.0, -2.0, 0.5] + 3.0 + 0.05 * rng.normal(size=200))
    return path


def test_r2_score_is_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    T = rng.normal(size=(40, 2))
    P = T + 0.3 * rng.normal(size=(40, 2))
    assert r2_score(T, P) == pytest.approx(metrics.r2_score(T, P), rel=1e-12)
    assert r2_score(T[:, 0], P[:, 0]) == pytest.approx(metrics.r2_score(T[:, 0], P[:, 0]))
    assert r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0 and r2_score([2.0, 2.0], [1.0, 2.0]) == 0.0


def test_regression_trains_scores_evaluates_and_predicts(capsys, targets, tmp_path):
    out_dir = tmp_path / "r"
    argv = ["train", "--data", targets, "--task", "regression", "--epochs", "60", "--quiet"]
    status, out, _ = run(capsys, *argv, "--out", out_dir)
    assert status == 0
    assert "reg: 144 train / 16 validation / 40 test samples (regression: 1 target)" in out
    assert "3 -> 64 -> 1 sigmoid MLP" in out and ", mse, adam" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.95 and metrics["test_accuracy"] is None
    assert f"test R² {metrics['test_r2']:.4f} (loss {metrics['test_loss']:.4g})" in out
    net = xpnet.load(out_dir, backend="numpy")
    assert net.output == "identity"
    # evaluate scores the same test split; predict writes the values
    assert f"R² {metrics['test_r2']:.4f}, loss" in run(capsys, "evaluate", out_dir)[1]
    X = np.load(targets)["X"]
    assert run(capsys, "predict", out_dir, targets, "-o", tmp_path / "p.csv")[0] == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    want = xpnet.to_numpy(net.forward(xpnet.asarray(X, like=net)))[:, 0]
    assert lines[0] == "y" and np.allclose([float(v) for v in lines[1:]], want)
    assert run(capsys, "predict", out_dir, targets, "-o", tmp_path / "p.npz")[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "p.npz")["y"], want)


def test_a_resumed_regression_equals_the_uninterrupted_one(capsys, targets, tmp_path):
    argv = ["train", "--data", targets, "--task", "regression", "--quiet"]
    assert run(capsys, *argv, "--epochs", "8", "--out", tmp_path / "straight")[0] == 0
    assert run(capsys, *argv, "--epochs", "5", "--out", tmp_path / "r")[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "8", "--quiet")[0] == 0
    want = xpnet.load(tmp_path / "straight", backend="numpy").state_dict()
    got = xpnet.load(tmp_path / "r", backend="numpy").state_dict()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_what_regression_cannot_take_is_one_line(capsys, targets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.csv").write_text("a,label\n1,x\n2,y\n3,x\n")
    for argv, said in (
        (["--data", targets, "--loss", "softmax_ce"], "--loss softmax_ce does not fit --task"),
        (["--data", "digits"], "digits is a classification dataset; regression needs a .npz"),
        (["--data", tmp_path / "text.csv"], "the last column holds text, and regression needs"),
    ):
        status, _, err = run(capsys, "train", "--task", "regression", *argv)
        assert status == 2 and said in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()
