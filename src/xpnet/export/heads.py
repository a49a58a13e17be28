"""What an exported model adds around the net: the standardization of its inputs, and a run's
class probabilities and labels by the rules of `xpnet predict` (`cli/evaluate.py`'s
probabilities, `scoring.predicted_labels`' labels)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .graph import GraphBuilder

__all__ = ["labels", "probabilities", "standardized"]


def standardized(g: GraphBuilder, x: str, mean: np.ndarray, std: np.ndarray) -> str:
    """(x - mean) / std, feature by feature."""
    return g.node("Div", [g.node("Sub", [x, g.parameter("mean", mean)]), g.parameter("std", std)])


def probabilities(g: GraphBuilder, y: str, n_out: int, output: str) -> str:
    """Class probabilities from the outputs y: one output, the probability of class 1 (a
    sigmoid's value, or the sigmoid of any other output); several, their softmax for a linear
    output, else each over their sum (evenly 1 / n_out where the sum is not positive)."""
    if n_out == 1:
        return y if output == "sigmoid" else g.node("Sigmoid", [y])
    if output == "identity":
        return g.node("Softmax", [y], axis=1)
    total = g.node("ReduceSum", [y, g.constant("class_axis", [1])], keepdims=1)
    positive = g.node("Greater", [total, g.constant("zero", 0.0)])
    even = g.constant("even", 1.0 / n_out)
    return g.node("Where", [positive, g.node("Div", [y, total]), even])


def labels(g: GraphBuilder, y: str, n_out: int, classes: np.ndarray) -> str:
    """Each row's label among `classes` (ints or text): the argmax of several outputs, or
    class 1 where a single output is >= 0.5."""
    if n_out > 1:
        codes = g.node("ArgMax", [y], axis=1, keepdims=0)
    else:
        first = g.node("Squeeze", [y, g.constant("class_axis", [1])])
        hit = g.node("GreaterOrEqual", [first, g.constant("threshold", 0.5)])
        codes = g.node("Cast", [hit], to=TensorProto.INT64)
    return g.node("Gather", [g.constant("classes", classes), codes], axis=0)
