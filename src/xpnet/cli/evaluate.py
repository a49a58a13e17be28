"""`xpnet evaluate` and `xpnet predict`: use a saved run."""

from __future__ import annotations

import argparse
import functools
from typing import Any

import numpy as np

from .. import plots
from ..backend import to_numpy
from ..checkpoint import load_checkpoint
from ..confusion import confusion_matrix
from ..data import Dataset, load_inputs
from ..layers.sequence import widths
from ..losses import LOSSES
from ..scoring import predict, predicted_labels
from ..sequential import Sequential
from .classreport import class_report
from .config import check_same_data, load_data, test_split
from .errors import UsageError
from .options import ABSENT
from .outputs import Outputs
from .predictions import check_format, encode_predictions, encode_values
from .runs import draw, run_model
from .scores import scores
from .standardize import Standardization

__all__ = ["cmd_evaluate", "cmd_predict"]


def cmd_evaluate(args: argparse.Namespace) -> None:
    ck = load_checkpoint(run_model(args.run_dir), args.backend, args.device)
    options = ck.metadata.get("options")
    options = options if isinstance(options, dict) else {}  # a checkpoint saved by xpnet.save
    task = _task(options)
    if args.data is not None:  # the labels are coded as the run's training data's were
        data, where = load_data(args.data, task, ck.classes), "all samples"
    elif isinstance(options.get("test_data"), str):
        data = load_data(options["test_data"], task, ck.classes)
        recorded = options.get("test_data_sha256")
        check_same_data(
            data,
            options["test_data"],
            recorded,
            args.run_dir,
            "be evaluated",
            f"give --data {options['test_data']} to evaluate on all of it as it is now",
        )
        where = "the run's --test-data"
    elif isinstance(options.get("data"), str):
        whole = load_data(options["data"], task, ck.classes)
        check_same_data(
            whole,
            options["data"],
            options.get("data_sha256"),
            args.run_dir,
            "be evaluated",
            f"give --data {options['data']} to evaluate on all of it as it is now",
        )
        own_split = {**ABSENT, **options}["own_split"]
        data, where = test_split(whole, options["data"], None, own_split)[1], "the test split"
    else:
        raise UsageError(f"{args.run_dir} does not say what data it was trained on; give --data")
    scaling = Standardization.stored(ck.metadata)
    if scaling is not None:
        data = scaling.dataset(data)
    name = options.get("loss")
    loss = LOSSES[name if name in LOSSES else _default_loss(ck.net)]()
    result = scores(ck.net, data, loss)
    score = (
        f"R² {result['r2']:.4f}, "
        if "r2" in result
        else f"accuracy {100 * result['accuracy']:.2f} %, "
        if "accuracy" in result
        else ""
    )
    print(
        f"{data.name} ({where}, {len(data)}): {score}loss {result['loss']:.4g} "
        f"({type(loss).__name__}), epoch {ck.epoch}, {ck.net.backend.name} on "
        f"{ck.net.backend.device}"
    )
    if ck.classes is not None and not data.regression:
        _per_class(ck.net, data, ck.classes, args)


def _task(options: dict[str, Any]) -> str:
    """The task a run's stored options name (runs saved before --task: classification)."""
    return str({**ABSENT, **options}["task"])


def _per_class(
    net: Sequential, data: Dataset, classes: np.ndarray, args: argparse.Namespace
) -> None:
    """Each class's precision and recall and the confusion matrix, printed, and drawn as
    confusion.png in the run directory (the latest evaluation's: evaluate's own file)."""
    codes = to_numpy(predicted_labels(predict(net, data.X), net.backend.xp))
    matrix = confusion_matrix(data.y, codes, len(classes))
    labels = [str(label) for label in classes]
    print(class_report(matrix, labels))
    if args.run_dir.is_dir():
        picture = args.run_dir / "confusion.png"
        outputs = Outputs()
        outputs.adopt([picture])
        if draw(functools.partial(plots.plot_confusion, labels=labels), matrix, picture, outputs):
            print(f"confusion matrix drawn in {picture}")


def _default_loss(net: Sequential) -> str:
    return "softmax_ce" if net.output == "identity" else "sse"


def cmd_predict(args: argparse.Namespace) -> None:
    """Write the predicted labels (as the training data had them: numbers or text), the class
    probabilities and the net's outputs for the inputs X of an .npz file."""
    check_format(args.output)
    outputs_gate = Outputs(args.overwrite, option="-o")
    outputs_gate.claim(args.output)  # before any work: never a checkpoint, link or user's file
    ck = load_checkpoint(run_model(args.run_dir), args.backend, args.device)
    net = ck.net
    X = load_inputs(args.inputs, n_features=widths(net.layers)[0])
    scaling = Standardization.stored(ck.metadata)
    if scaling is not None:
        X = scaling(X)
    Y = predict(net, X)
    outputs = to_numpy(Y)
    options = ck.metadata.get("options")
    csv_out = args.output.suffix.lower() == ".csv"
    if _task(options if isinstance(options, dict) else {}) == "regression":
        data = encode_values(args.output, outputs)
        said = "y, or y0, y1, ...: the predicted values" if csv_out else "y: the predicted values"
    else:
        labels = ck.classes[to_numpy(predicted_labels(Y, net.backend.xp))]
        probabilities = _probabilities(outputs, net.output)
        data = encode_predictions(args.output, labels, probabilities, outputs, ck.classes)
        said = (
            "label, then p_<class>: the probability of each class"
            if csv_out
            else "labels (also y): class labels, probabilities: per class, outputs: the net's "
            "outputs"
        )
    outputs_gate.write(args.output, data)
    print(f"{len(X)} predictions -> {args.output} ({said})")


def _probabilities(outputs: np.ndarray, output: str) -> np.ndarray:
    """Class probabilities from the net's outputs: softmax of a linear output (the softmax
    cross-entropy nets); several sigmoid outputs scaled to sum to 1; a single output, the
    probability of class 1 (a sigmoid's value, or the sigmoid of a linear output)."""
    Z = outputs.astype(np.float64)
    if Z.shape[1] == 1:
        return Z if output == "sigmoid" else 1.0 / (1.0 + np.exp(-Z))
    if output == "identity":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    total = Z.sum(axis=1, keepdims=True)
    return np.divide(Z, total, out=np.full_like(Z, 1.0 / Z.shape[1]), where=total > 0)
