"""`xpnet evaluate` and `xpnet predict`: use a saved run."""

from __future__ import annotations

import argparse

import numpy as np

from ..backend import to_numpy
from ..checkpoint import load_checkpoint
from ..data import load_dataset, load_inputs
from ..layers.sequence import widths
from ..losses import LOSSES
from ..scoring import evaluate, predict, predicted_labels
from ..sequential import Sequential
from .config import check_same_data, test_split
from .errors import UsageError
from .options import ABSENT
from .outputs import Outputs
from .predictions import check_format, encode_predictions
from .runs import run_model

__all__ = ["cmd_evaluate", "cmd_predict"]


def cmd_evaluate(args: argparse.Namespace) -> None:
    ck = load_checkpoint(run_model(args.run_dir), args.backend, args.device)
    options = ck.metadata.get("options")
    options = options if isinstance(options, dict) else {}  # a checkpoint saved by xpnet.save
    if args.data is not None:  # the labels are coded as the run's training data's were
        data, where = load_dataset(args.data, classes=ck.classes), "all samples"
    elif isinstance(options.get("test_data"), str):
        data = load_dataset(options["test_data"], classes=ck.classes)
        recorded = options.get("test_data_sha256")
        check_same_data(data, options["test_data"], recorded, args.run_dir, "be evaluated")
        where = "the run's --test-data"
    elif isinstance(options.get("data"), str):
        whole = load_dataset(options["data"], classes=ck.classes)
        check_same_data(
            whole,
            options["data"],
            options.get("data_sha256"),
            args.run_dir,
            "be evaluated (give --data to use it)",
        )
        own_split = {**ABSENT, **options}["own_split"]
        data, where = test_split(whole, options["data"], None, own_split)[1], "the test split"
    else:
        raise UsageError(f"{args.run_dir} does not say what data it was trained on; give --data")
    name = options.get("loss")
    loss = LOSSES[name if name in LOSSES else _default_loss(ck.net)]()
    result = evaluate(ck.net, data.X, data.y, loss=loss)
    accuracy = f"accuracy {100 * result['accuracy']:.2f} %, " if "accuracy" in result else ""
    print(
        f"{data.name} ({where}, {len(data)}): {accuracy}loss {result['loss']:.4g} "
        f"({type(loss).__name__}), epoch {ck.epoch}, {ck.net.backend.name} on "
        f"{ck.net.backend.device}"
    )


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
    Y = predict(net, X)
    labels = ck.classes[to_numpy(predicted_labels(Y, net.backend.xp))]
    outputs = to_numpy(Y)
    probabilities = _probabilities(outputs, net.output)
    data = encode_predictions(args.output, labels, probabilities, outputs, ck.classes)
    outputs_gate.write(args.output, data)
    said = (
        "label, then p_<class>: the probability of each class"
        if args.output.suffix.lower() == ".csv"
        else "labels (also y): class labels, probabilities: per class, outputs: the net's outputs"
    )
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
