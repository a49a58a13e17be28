"""A run's scores on a dataset, as `xpnet train` (its test split) and `xpnet evaluate` report
them: the loss and the accuracy of a classifier, the loss and R² of a regression."""

from __future__ import annotations

from ..backend import to_numpy
from ..data import Dataset
from ..losses import Loss
from ..r2 import r2_score
from ..scoring import evaluate, predict
from ..sequential import Sequential

__all__ = ["scores"]


def scores(net: Sequential, data: Dataset, loss: Loss) -> dict[str, float]:
    """{"loss", "accuracy"} of a classifier; {"loss", "r2"} of a regression."""
    result = evaluate(net, data.X, data.y, loss=loss)
    if data.regression:
        result["r2"] = r2_score(data.y, to_numpy(predict(net, data.X)))
    return result
