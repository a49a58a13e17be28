"""`xpnet train --standardize` (issue 21, item 27): the training split's mean and standard
deviation per feature, stored in the checkpoint and applied by evaluate, predict and
--resume; runs without it train on the data as given."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run

import xpnet


@pytest.fixture
def unscaled(tmp_path):
    """Two informative features in wildly different units (and a constant one)."""
    rng = np.random.default_rng(0)
    n = 300
    X = np.c_[rng.normal(1000, 300, n), rng.normal(0, 0.001, n), np.full(n, 7.0)]
    y = ((X[:, 0] - 1000) / 300 + X[:, 1] / 0.001 > 0).astype(np.int64)
    path = tmp_path / "unscaled.npz"
    np.savez(path, X=X, y=y)
    return path


def _train(capsys, data, out, *extra):
    argv = ["train", "--data", data, "--epochs", "20", "--quiet", "--out", out, *extra]
    status, stdout, _ = run(capsys, *argv)
    assert status == 0
    return stdout, json.loads((out / "metrics.json").read_text())


def test_standardize_trains_unscaled_data_and_stores_its_numbers(capsys, unscaled, tmp_path):
    _, plain = _train(capsys, unscaled, tmp_path / "plain")
    header, scaled = _train(capsys, unscaled, tmp_path / "scaled", "--standardize")
    assert plain["test_accuracy"] < 0.7 < 0.95 < scaled["test_accuracy"]
    assert "(features standardized by the training split)" in header
    # the numbers are the fit split's (training part less validation), constant std kept 1
    from xpnet.cli.config import split
    from xpnet.cli.options import TrainOptions
    from xpnet.data import load_dataset

    ck = xpnet.load_checkpoint(tmp_path / "scaled", backend="numpy")
    options = TrainOptions.from_stored(ck.metadata["options"], tmp_path / "scaled")
    fit_set = split(load_dataset(str(unscaled)), options).fit
    np.testing.assert_array_equal(ck.metadata["standardize"]["mean"], fit_set.X.mean(axis=0))
    assert ck.metadata["standardize"]["std"][2] == 1.0 and options.standardize
    # evaluate and predict apply the same numbers: the run's own test score, its labels
    out = run(capsys, "evaluate", tmp_path / "scaled")[1]
    assert f"accuracy {100 * scaled['test_accuracy']:.2f} %" in out
    assert run(capsys, "predict", tmp_path / "scaled", unscaled, "-o", tmp_path / "p.npz")[0] == 0
    assert (np.load(tmp_path / "p.npz")["labels"] == np.load(unscaled)["y"]).mean() > 0.95
    assert "standardize" not in xpnet.load_checkpoint(tmp_path / "plain").metadata


def test_a_resumed_standardized_run_equals_the_uninterrupted_one(capsys, unscaled, tmp_path):
    _train(capsys, unscaled, tmp_path / "straight", "--standardize")
    argv = ["train", "--data", unscaled, "--quiet", "--standardize", "--out", tmp_path / "r"]
    assert run(capsys, *argv, "--epochs", "12")[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "r", "--epochs", "20", "--quiet")[0] == 0
    want = xpnet.load(tmp_path / "straight", backend="numpy").state_dict()
    got = xpnet.load(tmp_path / "r", backend="numpy").state_dict()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
