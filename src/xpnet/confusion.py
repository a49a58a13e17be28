"""Per-class scores of a classifier on the host: the confusion matrix and each class's
precision and recall, computed with NumPy from predicted and true class codes (what scikit-
learn's `confusion_matrix` and `precision_recall_fscore_support` give, without depending on
it)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ClassScores", "class_scores", "confusion_matrix"]


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: row i, column j = samples of class i predicted as
    class j (codes 0..n_classes-1)."""
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    flat = np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


class ClassScores(NamedTuple):
    """Per class: precision (of the samples predicted as it, the share that are; NaN when
    none was), recall (of its samples, the share found; NaN when it has none) and support
    (its samples)."""

    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray


def class_scores(matrix: np.ndarray) -> ClassScores:
    """Each class's precision, recall and support from a confusion matrix."""
    hits = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ClassScores(hits / predicted, hits / support, support)
