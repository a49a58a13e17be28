"""`xpnet predict`: probabilities, labels and outputs of a saved run."""

from __future__ import annotations

import numpy as np
from helpers import run

import xpnet
from xpnet.data import load_digits


def test_predict_writes_probabilities_and_labels(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "2", "--out", tmp_path / "r"]
    assert run(capsys, *argv)[0] == 0
    X = load_digits().X[:7]
    np.savez(tmp_path / "in.npz", X=X)
    status, out, _ = run(
        capsys,
        "predict",
        tmp_path / "r",
        tmp_path / "in.npz",
        "-o",
        tmp_path / "p.npz",
        "--backend",
        "numpy",
    )
    assert status == 0 and "probabilities" in out
    with np.load(tmp_path / "p.npz") as f:
        P, labels, outputs = f["probabilities"], f["labels"], f["outputs"]
        assert np.array_equal(f["y"], labels)
    net = xpnet.load(tmp_path / "r", backend="numpy")
    Z = xpnet.to_numpy(xpnet.predict(net, X)).astype(np.float64)
    expected = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(P, expected, rtol=1e-12)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(labels, P.argmax(axis=1)) and outputs.shape == (7, 10)
