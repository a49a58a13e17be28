"""`xpnet export`: a saved run as an ONNX model file that gives its probabilities and labels."""

from __future__ import annotations

import argparse

from ..checkpoint import load_checkpoint
from ..export import OPSET, onnx_bytes
from .errors import UsageError
from .outputs import Outputs
from .runs import run_model
from .standardize import Standardization

__all__ = ["cmd_export"]


def cmd_export(args: argparse.Namespace) -> None:
    """Write the run's net (its best epoch's under early stopping) as an ONNX model with the
    outputs `outputs`, `probabilities` and `labels` (the run's class labels), standardizing
    its raw input first where the run was trained with --standardize."""
    outputs = Outputs(args.overwrite, option="-o")
    outputs.claim(args.output)  # before any work: never a checkpoint, link or user's file
    ck = load_checkpoint(run_model(args.run_dir), backend="numpy")
    scaling = Standardization.stored(ck.metadata)  # a --standardize run takes raw features
    standardize = None if scaling is None else (scaling.mean, scaling.std)
    try:
        model = onnx_bytes(ck.net, classes=ck.classes, standardize=standardize)
    except ImportError as err:  # the onnx extra is not installed
        raise UsageError(str(err)) from err
    outputs.write(args.output, model)
    net = ck.net
    print(
        f"{args.output}: ONNX opset {OPSET}, input X (batch, {net.n_in}) float32 -> outputs "
        f"(batch, {net.n_out}), probabilities, labels ({len(ck.classes)} classes)"
    )
