"""Reading a dataset from a CSV file: numeric features, the label (a number or text) last.

Lines are read as text, so every error names the line of the file it is about; the numbers
are parsed by NumPy.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .labels import DataError, not_whole

__all__ = ["CsvTable", "check_class_labels", "read_csv"]

OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs"}  # what CSV files are mistaken for


class CsvTable(NamedTuple):
    """A CSV file's features X (float64), its last column and the file's line of each row."""

    X: np.ndarray
    last: np.ndarray
    lines: list[int]


def read_csv(path: Path) -> CsvTable:
    """(X, labels) of a file of comma-separated numbers with the label (a number or text) in
    the last column; a first line is a header when none of its cells is a number (a data row
    with one bad cell is kept, and reported as bad), or when it numbers the columns (0, 1, ...
    or 1, 2, ..., as pandas writes a frame without names) with a label no data line has. X is
    float64, one row per data line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text; save it as a plain .csv file") from err
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    for number, line in numbered:
        found = [name for sep, name in OTHER_SEPARATORS.items() if sep in line]
        if found and "," not in line:
            raise DataError(
                f"{path}: line {number} is separated by {found[0]}, not commas; the file must "
                "be comma-separated (label in the last column)"
            )
    if numbered and _is_header(numbered[0][1], [line for _, line in numbered[1:]]):
        numbered = numbered[1:]
    if not numbered:
        raise DataError(f"{path}: the dataset is empty (no data lines); add rows of numbers")
    rows = [_cells(line) for _, line in numbered]
    width = len(rows[0])
    for (number, _), cells in zip(numbered, rows, strict=True):
        if len(cells) != width:
            raise DataError(
                f"{path}: line {number} has {len(cells)} columns, expected {width}; fix that row"
            )
    lines = [line for _, line in numbered]
    try:
        X = np.loadtxt(
            lines, delimiter=",", quotechar='"', comments=None, ndmin=2, usecols=range(width - 1)
        )
    except ValueError as err:
        raise DataError(_problem(path, numbered) or f"{path}: {err}") from err
    return CsvTable(X, _labels([cells[-1] for cells in rows]), [n for n, _ in numbered])


def check_class_labels(path: Path, table: CsvTable) -> None:
    """Refuse number labels that name no class (1e30, 0.5, nan), by the file's line."""
    if table.last.dtype.kind != "f":
        return
    bad = not_whole(table.last)
    if bad.size:
        lines = [table.lines[i] for i in bad[:5]]
        raise DataError(
            f"{path}: the label {table.last[bad[0]]:g} on line {lines[0]} is no class label "
            f"(lines {', '.join(map(str, lines))}{', ...' if bad.size > 5 else ''}): class "
            "labels are whole numbers below 2**63 or text; fix those lines or drop them"
        )


def _cells(line: str) -> list[str]:
    """A line's cells: split at commas, except inside double quotes ("a, b" is one label)."""
    return next(csv.reader([line])) if '"' in line else line.split(",")


def _is_header(first: str, rest: list[str]) -> bool:
    """Whether the first line names the columns rather than holding a sample."""
    cells = [cell.strip() for cell in _cells(first)]
    if not any(_is_number(cell) for cell in cells):
        return True
    numbers = [int(cell) if cell.isdigit() else None for cell in cells]
    counting = numbers in (list(range(len(cells))), list(range(1, len(cells) + 1)))
    labels = {_cells(line)[-1].strip() for line in rest}
    return counting and bool(rest) and cells[-1] not in labels


def _labels(cells: list[str]) -> np.ndarray:
    """The label column: numbers when every cell is one (integers read exactly, as int64; else
    floats, so 1 and 1.0 are one class), else text; the spaces and double quotes around a
    cell are not part of its label."""
    cells = [cell.strip() for cell in cells]
    cells = [c[1:-1] if len(c) >= 2 and c[0] == c[-1] == '"' else c for c in cells]
    for number in (int, float):
        try:
            return np.array([number(cell) for cell in cells])
        except ValueError:
            pass
    return np.array(cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _problem(path: Path, numbered: list[tuple[int, str]]) -> str | None:
    """The first line with a feature numpy could not read, named by its line in the file."""
    for number, line in numbered:
        if not all(_is_number(cell) for cell in _cells(line)[:-1]):
            return f"{path}: line {number} has a non-numeric cell: {line.strip()[:60]!r}"
    return None
