"""A net as an ONNX model file: its forward pass in evaluation mode, for onnxruntime and the
other ONNX runtimes, with a dynamic batch dimension and a pinned opset.

The `onnx` package is an optional extra (`pip install 'xpnet[onnx]'`), imported only when a
model is exported. The file is a function of the net, its classes and standardization alone
(no time, no random names), so one run exported twice gives the same bytes."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..backend import to_numpy
from ..files import write_atomic
from ..labels import class_array
from ..sequential import Sequential

__all__ = ["INSTALL_HINT", "IR_VERSION", "OPSET", "export_onnx", "onnx_bytes"]

INSTALL_HINT = "pip install 'xpnet[onnx]'"
OPSET = 17  # the default domain's opset: LayerNormalization is an operator from 17 on
IR_VERSION = 8  # the ONNX file format of opset 17 (onnx 1.12), which runtimes since 2022 read


def export_onnx(
    net: Sequential,
    path: str | os.PathLike,
    *,
    classes: ArrayLike | None = None,
    standardize: tuple[ArrayLike, ArrayLike] | None = None,
) -> None:
    """Write `net` as an ONNX model file at `path`, atomically (see `onnx_bytes`)."""
    write_atomic(path, onnx_bytes(net, classes=classes, standardize=standardize))


def onnx_bytes(
    net: Sequential,
    *,
    classes: ArrayLike | None = None,
    standardize: tuple[ArrayLike, ArrayLike] | None = None,
) -> bytes:
    """The ONNX model of `net` in evaluation mode: input `X` (batch, n_in) in float32, output
    `outputs`, what `xpnet.predict(net, X)` returns. With `classes` (the labels the outputs
    stand for, as a checkpoint keeps them), also `probabilities` and `labels`, as `xpnet
    predict` gives them. With `standardize` = (mean, std) of the training features, the model
    takes raw features and standardizes them first. The metadata holds the net's
    architecture, and the classes and standardization where given, as JSON."""
    onnx = _require_onnx()
    from onnx import helper

    from .. import __version__  # here: the package is still being imported at import time

    metadata: dict[str, Any] = {"architecture": net.config()}
    named = None if classes is None else class_array(classes)
    if named is not None:
        metadata["classes"] = named.tolist()
    scaling = None if standardize is None else _checked_standardization(standardize, net.n_in)
    if scaling is not None:
        metadata["standardize"] = {"mean": scaling[0].tolist(), "std": scaling[1].tolist()}
    model = helper.make_model(
        _graph(net, named, scaling),
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="xpnet",
        producer_version=__version__,
    )
    helper.set_model_props(model, {k: json.dumps(v, sort_keys=True) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString(deterministic=True))


def _graph(
    net: Sequential, classes: np.ndarray | None, scaling: tuple[np.ndarray, np.ndarray] | None
) -> Any:
    """The graph: X (standardized by `scaling`) through the net's layers to `outputs`, and,
    with `classes`, on to `probabilities` and `labels`."""
    from onnx import TensorProto, helper

    from .graph import GraphBuilder
    from .heads import labels, probabilities, standardized
    from .layers import LayerEmitter

    g = GraphBuilder(np.dtype(np.float32), reserved=["X", *_OUTPUTS])
    x = "X" if scaling is None else standardized(g, "X", *scaling)
    y = LayerEmitter(net.layers, g).sequence(net.layers, x)
    rows: list[Any] = ["batch", net.n_out]
    results: dict[str, tuple[str, int, list[Any]]] = {"outputs": (y, TensorProto.FLOAT, rows)}
    if classes is not None:
        p = probabilities(g, y, net.n_out, net.output)
        results["probabilities"] = (p, TensorProto.FLOAT, rows)
        kind = TensorProto.STRING if classes.dtype.kind == "U" else TensorProto.INT64
        results["labels"] = (labels(g, y, net.n_out, classes), kind, ["batch"])
    outputs = [
        helper.make_tensor_value_info(g.rename(tensor, name), kind, shape, _OUTPUTS[name])
        for name, (tensor, kind, shape) in results.items()
    ]
    features = helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, ["batch", net.n_in], "the features"
    )
    return g.graph("xpnet", [features], outputs)


_OUTPUTS = {
    "outputs": "the net's outputs: what xpnet.predict returns",
    "probabilities": "the class probabilities (one output: the probability of the second class)",
    "labels": "the predicted class labels",
}


def _checked_standardization(
    standardize: tuple[ArrayLike, ArrayLike], n_in: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) as float64 vectors of n_in finite values, std positive."""
    mean, std = (np.asarray(to_numpy(v), dtype=np.float64).reshape(-1) for v in standardize)
    for name, value in (("mean", mean), ("std", std)):
        if value.shape != (n_in,) or not np.isfinite(value).all():
            raise ValueError(
                f"standardize's {name} must be {n_in} finite numbers (one per input feature), "
                f"got shape {value.shape}"
            )
    if not (std > 0).all():
        raise ValueError("standardize's std must be positive for every feature")
    return mean, std


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs the onnx package: {INSTALL_HINT}") from err
    return onnx
