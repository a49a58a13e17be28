"""What `xpnet evaluate` says of each class: precision, recall and support, and the confusion
matrix, as text (and as confusion.png in the run directory)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..confusion import class_scores

__all__ = ["MATRIX_TEXT_LIMIT", "class_report"]

MATRIX_TEXT_LIMIT = 20  # classes up to which the matrix is printed (beyond: the PNG alone)


def class_report(matrix: np.ndarray, labels: Sequence[str]) -> str:
    """The per-class table, then (up to MATRIX_TEXT_LIMIT classes) the confusion matrix with
    true classes as rows and predicted ones as columns."""
    scores = class_scores(matrix)
    width = max(5, *(len(label) for label in labels))
    lines = [f"{'class':<{width}}  precision  recall  support"]
    for label, precision, recall, support in zip(labels, *scores, strict=True):
        lines.append(f"{label:<{width}}  {_score(precision):>9}  {_score(recall):>6}  {support:>7}")
    if len(labels) <= MATRIX_TEXT_LIMIT:
        cell = max(len(str(matrix.max())), *(len(label) for label in labels))
        lines.append("confusion matrix (rows: true class, columns: predicted class):")
        lines.append(" " * width + "".join(f"  {label:>{cell}}" for label in labels))
        for label, row in zip(labels, matrix, strict=True):
            lines.append(f"{label:<{width}}" + "".join(f"  {n:>{cell}}" for n in row))
    return "\n".join(lines)


def _score(value: float) -> str:
    """A share to 4 decimals; "n/a" where it is undefined (no sample predicted or present)."""
    return "n/a" if np.isnan(value) else f"{value:.4f}"
