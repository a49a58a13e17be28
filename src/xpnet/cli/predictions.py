"""The file `xpnet predict` writes, chosen by the name's ending: an .npz archive (labels,
probabilities, outputs) or a .csv table (the label and one probability per class, with a
header); for a regression, the predicted values."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .errors import UsageError

__all__ = ["FORMATS", "check_format", "encode_predictions", "encode_values"]

FORMATS = (".npz", ".csv")


def check_format(path: Path) -> None:
    """Refuse a name whose ending says another format than the file would have."""
    if path.suffix.lower() not in FORMATS:
        raise UsageError(
            f"-o {path}: predictions are written as .npz or .csv, chosen by the name's ending; "
            f"give a name ending in .npz or .csv"
        )


def encode_predictions(
    path: Path,
    labels: np.ndarray,
    probabilities: np.ndarray,
    outputs: np.ndarray,
    classes: np.ndarray,
) -> bytes:
    """The bytes of the predictions file `path` names (.npz or .csv)."""
    if path.suffix.lower() == ".csv":
        return _csv(labels, probabilities, classes)
    buffer = io.BytesIO()
    np.savez(buffer, y=labels, labels=labels, probabilities=probabilities, outputs=outputs)
    return buffer.getvalue()


def _csv(labels: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> bytes:
    """label,p_<class>,... one row per input (a single-output net: the probability of its
    second class, as in the .npz)."""
    named = classes if probabilities.shape[1] == len(classes) else classes[-1:]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["label", *(f"p_{c}" for c in named.tolist())])
    for label, row in zip(labels.tolist(), probabilities.tolist(), strict=True):
        writer.writerow([label, *(repr(float(p)) for p in row)])
    return text.getvalue().encode()


def encode_values(path: Path, outputs: np.ndarray) -> bytes:
    """A regression's predictions: .npz with y (1-D for one output) and outputs; .csv with a
    header y (or y0, y1, ... for several outputs), one row per input."""
    values = outputs[:, 0] if outputs.shape[1] == 1 else outputs
    if path.suffix.lower() == ".csv":
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        names = ["y"] if values.ndim == 1 else [f"y{i}" for i in range(values.shape[1])]
        writer.writerow(names)
        for row in values.reshape(len(values), -1).tolist():
            writer.writerow([repr(float(v)) for v in row])
        return text.getvalue().encode()
    buffer = io.BytesIO()
    np.savez(buffer, y=values, outputs=outputs)
    return buffer.getvalue()
