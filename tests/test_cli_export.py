"""`xpnet export`: a run as an ONNX model whose probabilities and labels are `xpnet
predict`'s, on the digits and on iris-like data with text labels; one run gives one file."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from helpers import run

from xpnet.data import load_digits
from xpnet.export import OPSET

onnx = pytest.importorskip(
    "onnx", reason="the onnx extra is not installed: pip install 'xpnet[onnx]'"
)
ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported models")

TOL = 1e-5
SPECIES = np.array(["setosa", "versicolor", "virginica"])


def iris_csv(path, n=150, seed=0):
    """Iris-like measurements with the species as text, last column."""
    rng = np.random.default_rng(seed)
    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    k = np.arange(n) % 3
    X = means[k] + 0.3 * rng.standard_normal((n, 4))
    rows = [",".join(f"{v:.3f}" for v in x) + f",{SPECIES[c]}" for x, c in zip(X, k, strict=True)]
    path.write_text("sepal_l,sepal_w,petal_l,petal_w,species\n" + "\n".join(rows) + "\n")
    return path, X


def predicted(capsys, run_dir, X, tmp_path):
    """`xpnet predict`'s labels and probabilities for X."""
    np.savez(tmp_path / "in.npz", X=X)
    argv = ["predict", run_dir, tmp_path / "in.npz", "-o", tmp_path / "p.npz", "--overwrite"]
    assert run(capsys, *argv)[0] == 0
    with np.load(tmp_path / "p.npz") as f:
        return f["labels"], f["probabilities"]


def exported(capsys, run_dir, path, *more):
    status, out, err = run(capsys, "export", run_dir, "-o", path, *more)
    assert status == 0, err
    return out


def onnx_run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities", "labels"], {"X": X.astype(np.float32)})


@pytest.mark.parametrize("loss", ["softmax_ce", "sse"])
def test_an_exported_digits_run_predicts_as_xpnet_predict(capsys, small, tmp_path, loss):
    argv = ["train", "--data", small, "--hidden", "16", "--epochs", "2", "--loss", loss]
    assert run(capsys, *argv, "--out", tmp_path / "r", "--quiet")[0] == 0
    out = exported(capsys, tmp_path / "r", tmp_path / "m.onnx")
    assert f"opset {OPSET}" in out and "(batch, 64)" in out and "10 classes" in out
    X = load_digits().X[:100]
    labels, P = predicted(capsys, tmp_path / "r", X, tmp_path)
    got_p, got_labels = onnx_run(tmp_path / "m.onnx", X)
    np.testing.assert_allclose(got_p, P, rtol=TOL, atol=TOL)
    assert got_labels.tolist() == labels.tolist()


def test_text_labels_come_out_as_text_and_in_the_metadata(capsys, tmp_path):
    data, X = iris_csv(tmp_path / "iris.csv")
    argv = ["train", "--data", data, "--hidden", "8", "--epochs", "20", "--quiet"]
    assert run(capsys, *argv, "--activation", "gelu", "--out", tmp_path / "r")[0] == 0
    exported(capsys, tmp_path / "r", tmp_path / "iris.onnx")
    labels, P = predicted(capsys, tmp_path / "r", X, tmp_path)
    got_p, got_labels = onnx_run(tmp_path / "iris.onnx", X)
    np.testing.assert_allclose(got_p, P, rtol=TOL, atol=TOL)
    assert got_labels.tolist() == labels.tolist() and set(labels) <= set(SPECIES)
    model = onnx.load(tmp_path / "iris.onnx")
    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["classes"]) == SPECIES.tolist()


def test_a_standardized_run_exports_a_model_of_raw_features(capsys, tmp_path):
    """A --standardize run's model takes the raw measurements, as `xpnet predict` does."""
    data, X = iris_csv(tmp_path / "iris.csv")
    argv = ["train", "--data", data, "--hidden", "8", "--epochs", "20", "--quiet"]
    assert run(capsys, *argv, "--standardize", "--out", tmp_path / "r")[0] == 0
    exported(capsys, tmp_path / "r", tmp_path / "iris.onnx")
    labels, P = predicted(capsys, tmp_path / "r", X, tmp_path)
    got_p, got_labels = onnx_run(tmp_path / "iris.onnx", X)
    np.testing.assert_allclose(got_p, P, rtol=TOL, atol=TOL)
    assert got_labels.tolist() == labels.tolist()
    metadata = {p.key: p.value for p in onnx.load(tmp_path / "iris.onnx").metadata_props}
    assert len(json.loads(metadata["standardize"])["mean"]) == 4


def test_one_run_exported_twice_gives_the_same_bytes(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "1", "--quiet"]
    assert (
        run(capsys, *argv, "--norm", "batch", "--dropout", "0.2", "--out", tmp_path / "r")[0] == 0
    )
    exported(capsys, tmp_path / "r", tmp_path / "a.onnx")
    exported(capsys, tmp_path / "r", tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_an_existing_file_is_replaced_only_with_overwrite(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "1", "--quiet"]
    assert run(capsys, *argv, "--out", tmp_path / "r")[0] == 0
    target = tmp_path / "m.onnx"
    target.write_bytes(b"mine")
    status, _, err = run(capsys, "export", tmp_path / "r", "-o", target)
    assert status == 2 and "--overwrite" in err and target.read_bytes() == b"mine"
    exported(capsys, tmp_path / "r", target, "--overwrite")
    assert onnx.load(target).graph.input[0].name == "X"


def test_without_the_onnx_package_it_says_how_to_get_it(capsys, small, tmp_path, monkeypatch):
    argv = ["train", "--data", small, "--hidden", "8", "--epochs", "1", "--quiet"]
    assert run(capsys, *argv, "--out", tmp_path / "r")[0] == 0
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    status, _, err = run(capsys, "export", tmp_path / "r", "-o", tmp_path / "m.onnx")
    assert status == 2 and "pip install 'xpnet[onnx]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
