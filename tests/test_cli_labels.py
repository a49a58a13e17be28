"""Text and sparse integer labels on the command line (issue 9, item 7): one mapping, the
training data's, codes the validation and test parts, --test-data, `evaluate --data` and
`predict`; it is saved with the run, and runs saved without it keep codes 0..n-1."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import run

import xpnet
from xpnet.cli import main
from xpnet.cli.config import data_digest
from xpnet.data import load_dataset

ANIMALS = np.array(["cat", "dog", "zebra"])
CENTRES = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
RUNS_0_1 = Path(__file__).parent / "data" / "runs-0.1"


def one_line_error(capsys, *argv):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, ""), (status, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def clusters(n, seed, classes=(0, 1, 2)):
    """n points around three centres, of the given classes (indices into CENTRES)."""
    rng = np.random.default_rng(seed)
    k = rng.choice(classes, n)
    return CENTRES[k] + 0.5 * rng.standard_normal((n, 2)), k


def write_csv(path, X, labels):
    lines = [
        "weight,height,animal",
        *(f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(X, labels, strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def animals(tmp_path_factory):
    """A CSV of 150 animals (text labels) and a run trained on it: (csv, run)."""
    folder = tmp_path_factory.mktemp("animals")
    X, k = clusters(150, 0)
    path = write_csv(folder / "animals.csv", X, ANIMALS[k])
    argv = ["train", "--data", path, "--hidden", "8", "--epochs", "30", "--quiet"]
    assert main([str(a) for a in [*argv, "--out", folder / "run"]]) == 0
    return path, folder / "run"


def test_text_labels_train_and_predict_as_text(capsys, animals, tmp_path):
    _, run_dir = animals
    X, k = clusters(40, 1)
    np.savez(tmp_path / "new.npz", X=X)
    status, out, _ = run(capsys, "predict", run_dir, tmp_path / "new.npz", "-o", tmp_path / "p.npz")
    assert status == 0 and "40 predictions" in out
    with np.load(tmp_path / "p.npz") as result:  # no pickle: a plain unicode array
        labels, y, P = result["labels"], result["y"], result["probabilities"]
    assert labels.dtype.kind == "U" and np.array_equal(labels, y)
    assert np.mean(labels == ANIMALS[k]) >= 0.9  # the animals they are
    np.testing.assert_array_equal(labels, ANIMALS[P.argmax(axis=1)])  # columns: sorted classes
    ck = xpnet.load_checkpoint(run_dir, backend="numpy")
    assert ck.classes.tolist() == ["cat", "dog", "zebra"] and ck.net.sizes == [2, 8, 3]
    assert json.loads((run_dir / "config.json").read_text())["classes"] == ["cat", "dog", "zebra"]


def test_the_run_says_its_classes(capsys, animals, tmp_path):
    path, run_dir = animals
    argv = ["train", "--data", path, "--epochs", "1", "--quiet", "--out", tmp_path / "r"]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert (
        "animals: 109 train / 11 validation / 30 test samples (3 classes: cat, dog, zebra); " in out
    )
    status, out, _ = run(capsys, "info", run_dir)
    assert status == 0 and out.splitlines()[-1] == "classes: cat, dog, zebra"
    status, out, _ = run(capsys, "train", "--data", "xor", "--epochs", "1", "--out", tmp_path / "x")
    assert "classes" not in out.splitlines()[0]  # labels 0..k-1 are said no more than before


def test_evaluate_codes_a_file_by_the_runs_classes(capsys, animals, tmp_path):
    _, run_dir = animals
    metrics = json.loads((run_dir / "metrics.json").read_text())
    status, out, _ = run(capsys, "evaluate", run_dir)
    assert (
        status == 0
        and f"(the test split, 30): accuracy {100 * metrics['test_accuracy']:.2f}" in out
    )
    X, k = clusters(30, 2, classes=(2,))  # zebras only: coded 2, as in training
    write_csv(tmp_path / "zebras.csv", X, ANIMALS[k])
    net = xpnet.load(run_dir, backend="numpy")
    expected = np.mean(xpnet.to_numpy(xpnet.predict(net, X)).argmax(axis=1) == 2)
    status, out, _ = run(capsys, "evaluate", run_dir, "--data", tmp_path / "zebras.csv")
    assert status == 0 and f"(all samples, 30): accuracy {100 * expected:.2f} %" in out
    assert expected > 0.8


def test_test_data_lacking_classes_is_scored_with_the_training_codes(capsys, animals, tmp_path):
    """Dogs only: scored as dog (code 1). Coded by its own labels, dog would be code 0 (cat's),
    and the accuracy the mean of predictions of class 0 instead."""
    path, _ = animals
    X, k = clusters(40, 3, classes=(1,))
    test = write_csv(tmp_path / "dogs.csv", X, ANIMALS[k])
    argv = ["train", "--data", path, "--test-data", test, "--hidden", "8", "--epochs", "30"]
    status, out, _ = run(capsys, *argv, "--quiet", "--out", tmp_path / "r")
    assert status == 0 and "/ 40 test samples (from dogs) (3 classes: cat, dog, zebra)" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    predicted = xpnet.to_numpy(xpnet.predict(xpnet.load(tmp_path / "r", "numpy"), X)).argmax(1)
    assert metrics["test_accuracy"] == np.mean(predicted == 1) > 0.8
    assert np.mean(predicted == 0) < 0.2  # what per-file coding would have reported
    status, out, _ = run(capsys, "evaluate", tmp_path / "r")
    assert status == 0 and f"--test-data, 40): accuracy {100 * np.mean(predicted == 1):.2f}" in out


def test_a_label_the_training_data_lacks_is_one_line(capsys, animals, tmp_path):
    path, run_dir = animals
    X, _ = clusters(3, 4)
    test = write_csv(tmp_path / "t.csv", X, ["dog", "lion", "lion"])
    err = one_line_error(
        capsys, "train", "--data", path, "--test-data", test, "--out", tmp_path / "r"
    )
    assert err.startswith(f"xpnet train: error: {test} has label 'lion' outside the training ")
    assert "classes (cat, dog, zebra)" in err and not (tmp_path / "r").exists()
    err = one_line_error(capsys, "evaluate", run_dir, "--data", test)
    assert f"{test} has label 'lion' outside the training data's classes (cat, dog, zebra)" in err


def test_a_text_label_run_resumes_bit_identically_and_sees_changed_labels(capsys, tmp_path):
    X, k = clusters(60, 5)
    path = write_csv(tmp_path / "a.csv", X, ANIMALS[k])
    common = ["--data", path, "--hidden", "4", "--batch-size", "16", "--backend", "numpy"]
    assert run(capsys, "train", *common, "--epochs", "3", "--out", tmp_path / "straight")[0] == 0
    assert run(capsys, "train", *common, "--epochs", "1", "--out", tmp_path / "split")[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "split", "--epochs", "3")[0] == 0
    a = xpnet.load(tmp_path / "straight", backend="numpy").state_dict()
    b = xpnet.load(tmp_path / "split", backend="numpy").state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    labels = ANIMALS[k].copy()
    labels[labels == "cat"] = "dog"  # the same classes minus one: the digest sees it
    write_csv(path, X, labels)
    err = one_line_error(capsys, "train", "--resume", tmp_path / "split", "--epochs", "4")
    assert "changed since the run" in err


def test_sparse_integer_labels(capsys, tmp_path):
    X, k = clusters(90, 6)
    values = np.array([-1, 5, 100])
    np.savez(tmp_path / "s.npz", X=X, y=values[k])
    argv = ["train", "--data", tmp_path / "s.npz", "--hidden", "8", "--epochs", "30", "--quiet"]
    status, out, _ = run(capsys, *argv, "--out", tmp_path / "r")
    assert status == 0 and "(3 classes: -1, 5, 100); 2 -> 8 -> 3 sigmoid MLP" in out
    X_new, k_new = clusters(30, 7)
    np.savez(tmp_path / "new.npz", X=X_new)
    assert (
        run(capsys, "predict", tmp_path / "r", tmp_path / "new.npz", "-o", tmp_path / "p.npz")[0]
        == 0
    )
    with np.load(tmp_path / "p.npz") as result:
        assert result["labels"].dtype == np.int64 and set(result["labels"]) <= {-1, 5, 100}
        assert np.mean(result["labels"] == values[k_new]) >= 0.9


def test_integer_labels_hash_as_before_they_were_coded(tmp_path):
    """The digest of data with labels 0..k-1 is the one older versions recorded (X float64,
    y int64), so their runs resume and evaluate."""
    np.savez(tmp_path / "d.npz", X=np.eye(3), y=np.array([2, 0, 1]))
    data = load_dataset(tmp_path / "d.npz")
    old = hashlib.sha256()
    for a in (np.eye(3), np.array([2, 0, 1], dtype=np.int64)):
        old.update(f"{a.dtype.str}|{a.shape}|".encode() + a.tobytes())
    assert data_digest(data, str(tmp_path / "d.npz")) == old.hexdigest()


def test_a_run_saved_without_classes_keeps_codes_0_to_n_minus_1(capsys, tmp_path):
    """Before classes were saved, labels were the codes and a net had max label + 1 outputs:
    labels {0, 1, 3} trained 4 of them, which must stay labels 0..3 (not 3 coded as 2)."""
    X, k = clusters(40, 8)
    y = np.array([0, 1, 3])[k]
    np.savez(tmp_path / "gap.npz", X=X, y=y)
    net = xpnet.MLP([2, 4], output="identity", seed=1)
    xpnet.save(net, tmp_path / "old")  # no classes, as older versions saved
    scored = xpnet.evaluate(net, X, y, loss=xpnet.SoftmaxCrossEntropyLoss())
    status, out, _ = run(capsys, "evaluate", tmp_path / "old", "--data", tmp_path / "gap.npz")
    assert status == 0 and f"accuracy {100 * scored['accuracy']:.2f} %" in out
    np.savez(tmp_path / "in.npz", X=X)
    assert (
        run(capsys, "predict", tmp_path / "old", tmp_path / "in.npz", "-o", tmp_path / "p.npz")[0]
        == 0
    )
    with np.load(tmp_path / "p.npz") as result:
        np.testing.assert_array_equal(
            result["labels"], xpnet.to_numpy(xpnet.predict(net, X)).argmax(1)
        )


def test_runs_saved_by_xpnet_0_1_evaluate_and_say_their_classes(capsys, tmp_path):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    shutil.copy(RUNS_0_1 / "adam-epoch2.safetensors", run_dir / "checkpoint.safetensors")
    status, out, _ = run(capsys, "evaluate", run_dir)
    assert status == 0 and "digits (the test split, 359): accuracy" in out
    status, out, _ = run(capsys, "info", run_dir)
    assert status == 0 and out.splitlines()[-1] == "classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
