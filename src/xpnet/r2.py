"""The coefficient of determination R² of a regression, on the host: 1 - (residual sum of
squares) / (total sum of squares about the targets' mean), per output column, averaged over
the columns as scikit-learn's `r2_score` does by default."""

from __future__ import annotations

import numpy as np

__all__ = ["r2_score"]


def r2_score(targets: np.ndarray, predictions: np.ndarray) -> float:
    """R² of `predictions` for `targets` (1-D, or one column per output): 1 is perfect, 0 is
    as good as predicting the mean; a constant target column scores 1 if hit exactly, else 0
    (scikit-learn's convention)."""
    T = np.asarray(targets, np.float64).reshape(len(targets), -1)
    P = np.asarray(predictions, np.float64).reshape(T.shape)
    residual = ((T - P) ** 2).sum(axis=0)
    total = ((T - T.mean(axis=0)) ** 2).sum(axis=0)
    constant = total == 0
    scores = np.where(
        constant, np.where(residual == 0, 1.0, 0.0), 1 - residual / np.where(constant, 1, total)
    )
    return float(scores.mean())
