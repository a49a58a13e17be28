"""`xpnet evaluate` and `xpnet predict`: use a saved run."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..checkpoint import load_checkpoint
from ..data import load_dataset, load_inputs, train_test_split
from ..files import write_atomic
from ..losses import LOSSES
from ..model import MLP
from ..scoring import evaluate, predict, predicted_labels
from .config import SPLIT_SEED, TEST_FRACTION, _check_same_data
from .errors import UsageError
from .runs import BEST

__all__ = ["cmd_evaluate", "cmd_predict"]


def cmd_evaluate(args: argparse.Namespace) -> None:
    ck = load_checkpoint(_model(args.run_dir), args.backend, args.device)
    options = ck.metadata.get("options")
    options = options if isinstance(options, dict) else {}  # a checkpoint saved by xpnet.save
    if args.data is not None:
        data, where = load_dataset(args.data), "all samples"
    elif isinstance(options.get("data"), str):
        whole = load_dataset(options["data"])
        _check_same_data(whole, options, args.run_dir, "be evaluated (give --data to use it)")
        data, where = train_test_split(whole, TEST_FRACTION, SPLIT_SEED)[1], "the test split"
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


def _model(run: Path) -> Path:
    """The net a run stands for: with early stopping, its best epoch's (best.safetensors),
    else its checkpoint (the last epoch's; a .safetensors file is itself)."""
    return run / BEST if (run / BEST).is_file() else run


def _default_loss(net: MLP) -> str:
    return "softmax_ce" if net.output == "identity" else "sse"


def cmd_predict(args: argparse.Namespace) -> None:
    net = load_checkpoint(_model(args.run_dir), args.backend, args.device).net
    X = load_inputs(args.inputs)
    Y = predict(net, X)
    labels = to_numpy(predicted_labels(Y, net.backend.xp))
    buffer = io.BytesIO()
    np.savez(buffer, y=labels, outputs=to_numpy(Y))
    write_atomic(args.output, buffer.getvalue())
    print(f"{len(X)} predictions -> {args.output} (y: class labels, outputs: the net's outputs)")
