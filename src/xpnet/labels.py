"""Class labels: what a data file's labels may be, and the codes 0..k-1 a net trains on.

The rule is scikit-learn's LabelEncoder: the codes index the training data's distinct labels
in sorted order (its classes), and every other file (test data, data to evaluate on) is coded
by those same classes, never by its own, so a file that lacks a class keeps every other
class's code. Integers follow the same rule: 0..k-1 with every class present code as
themselves; {0, 1, 3} as 0, 1, 2 and {-1, 5, 100} likewise, the net having one output per
class that occurs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DataError",
    "class_array",
    "describe_classes",
    "encode_labels",
    "label_values",
    "not_whole",
]

SHOW = 5  # how many offending rows or labels an error message lists


class DataError(ValueError):
    """A dataset that cannot be used as given; the message names the problem and the fix.

    Defined here, the module every data module builds on; `xpnet.data` exports it too."""


def label_values(y: ArrayLike, name: str = "labels") -> np.ndarray:
    """y's labels as the values classes are made of: int64 (integers, booleans, whole-number
    floats such as 1.0) or str (text; bytes are read as UTF-8). Refuses fractional and
    non-finite numbers, empty text and other dtypes (objects are never unpickled)."""
    y = np.asarray(y)
    if y.dtype.kind == "S":
        try:
            y = np.char.decode(y, "utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{name}: labels are bytes but not UTF-8 text ({err})") from err
    if y.dtype.kind == "U":
        empty = np.flatnonzero(np.char.strip(y) == "")
        if empty.size:
            raise DataError(
                f"{name}: {empty.size} labels are empty (rows {empty[:SHOW].tolist()}); "
                "give every row a label"
            )
        return y
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind != "f":
        raise DataError(
            f"{name}: labels must be integers or text, got dtype {y.dtype}; convert them with "
            "y.astype(int) or y.astype(str)"
        )
    bad_rows = not_whole(y)
    if bad_rows.size:
        raise DataError(
            f"{name}: labels must be whole numbers or text, found {y[bad_rows[0]]} "
            f"(rows {bad_rows[:SHOW].tolist()}); fix or drop those rows"
        )
    return y.astype(np.int64)


def not_whole(y: np.ndarray) -> np.ndarray:
    """The rows of float labels that are no class label: not finite, fractional, or beyond
    int64 (1e30)."""
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) >= 2**63))


def class_array(classes: ArrayLike, name: str = "classes") -> np.ndarray:
    """classes (a Dataset's, or a list read from a checkpoint) checked as `label_values` and
    to be a non-empty 1-D array of distinct labels, in any order."""
    values = label_values(classes, name)
    if values.ndim != 1 or values.size == 0 or np.unique(values).size != values.size:
        raise DataError(
            f"{name} must be a non-empty 1-D list of distinct labels, got "
            f"{describe_classes(values.ravel())}"
        )
    return values


def encode_labels(
    y: ArrayLike, classes: ArrayLike | None = None, name: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """(codes, classes): each label's index (int64) in `classes`, by default y's distinct
    labels in sorted order. Given classes (the training data's), a label not among them
    raises DataError naming it and the classes; numbers and text are compared as text (a
    file whose labels all look like numbers still matches the classes "1", "2", "many")."""
    values = label_values(y, name)
    if classes is None:
        classes, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), classes
    classes = class_array(classes)
    keys = classes
    if "U" in (classes.dtype.kind, values.dtype.kind):
        keys, values = classes.astype(str), values.astype(str)
    order = np.argsort(keys, kind="stable")
    at = np.searchsorted(keys[order], values).clip(max=keys.size - 1)
    found = keys[order][at] == values
    if not found.all():
        raise _unseen(np.unique(values[~found]), classes, name)
    return order[at].astype(np.int64), classes


def describe_classes(classes: ArrayLike, limit: int = 10) -> str:
    """The classes as text for messages: "cat, dog", or the first and last of many,
    "0, 1, 2, 3, 4, 5, 6, 7, ..., 98, 99 (100 classes)"."""
    values = [str(v) for v in np.asarray(classes).tolist()]
    if len(values) <= limit:
        return ", ".join(values)
    return f"{', '.join([*values[: limit - 2], '...', *values[-2:]])} ({len(values)} classes)"


def _unseen(labels: np.ndarray, classes: np.ndarray, name: str) -> DataError:
    """The error for labels that no class stands for."""
    shown = ", ".join(repr(v) for v in labels[:SHOW].tolist()) + ", ..." * (labels.size > SHOW)
    return DataError(
        f"{name} has label{'s' * (labels.size > 1)} {shown} outside the training data's "
        f"classes ({describe_classes(classes)}); the net predicts only those: drop these rows, "
        "or train on data that has them"
    )
