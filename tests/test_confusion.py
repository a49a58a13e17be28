"""Per-class scores on the host (issue 21, item 28): the confusion matrix, precision and
recall as scikit-learn defines them, and what `xpnet evaluate` prints and draws of them."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run

from xpnet.confusion import class_scores, confusion_matrix


def test_confusion_matrix_and_class_scores_by_hand():
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 1])
    matrix = confusion_matrix(true, predicted, 4)  # class 3: neither present nor predicted
    np.testing.assert_array_equal(matrix, [[2, 1, 0, 0], [0, 2, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    precision, recall, support = class_scores(matrix)
    np.testing.assert_allclose(precision[:2], [1.0, 0.5])
    np.testing.assert_allclose(recall[:3], [2 / 3, 1.0, 0.0])
    assert np.isnan(precision[2]) and np.isnan(precision[3]) and np.isnan(recall[3])
    np.testing.assert_array_equal(support, [3, 2, 1, 0])


def test_the_same_as_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    matrix = confusion_matrix(true, predicted, 5)
    np.testing.assert_array_equal(matrix, metrics.confusion_matrix(true, predicted))
    want = metrics.precision_recall_fscore_support(true, predicted, zero_division=np.nan)
    for got, expected in zip(class_scores(matrix), (want[0], want[1], want[3]), strict=True):
        np.testing.assert_allclose(got, expected)


def test_evaluate_prints_each_class_and_draws_the_matrix(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    argv = ["train", "--epochs", "5", "--quiet", "--out", tmp_path / "r"]
    assert run(capsys, *argv)[0] == 0
    status, out, _ = run(capsys, "evaluate", tmp_path / "r")
    assert status == 0
    lines = out.splitlines()
    assert lines[1] == "class  precision  recall  support"
    rows = [line.split() for line in lines[2:12]]
    assert [row[0] for row in rows] == [str(d) for d in range(10)]
    assert sum(int(row[3]) for row in rows) == 359  # the test split
    assert lines[12] == "confusion matrix (rows: true class, columns: predicted class):"
    matrix = np.array([[int(n) for n in line.split()[1:]] for line in lines[14:24]])
    correct = np.trace(matrix) / matrix.sum()
    assert f"accuracy {100 * correct:.2f} %" in lines[0]
    recall = matrix.diagonal() / matrix.sum(axis=1)
    np.testing.assert_allclose([float(row[2]) for row in rows], recall, atol=5e-5)
    picture = tmp_path / "r" / "confusion.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"confusion matrix drawn in {picture}" in out
    assert run(capsys, "evaluate", tmp_path / "r")[0] == 0  # its own file: drawn again
