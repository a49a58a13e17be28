"""history.csv, written as epochs finish: one line appended per epoch (a single write, so a
killed run leaves whole lines), the whole file rewritten atomically when its columns change
or its rows must be cut back to the epochs the checkpoint holds; and read back on resume."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import UsageError
from .outputs import Outputs

__all__ = ["HistoryLog", "read_history"]

Record = Mapping[str, float]


class HistoryLog:
    """The history.csv at `path`, kept equal to the records it is synced with."""

    def __init__(self, path: Path, outputs: Outputs) -> None:
        self.path, self.outputs = path, outputs
        self.columns: list[str] = []
        self.rows = -1  # unknown: the first sync rewrites the file

    def sync(self, records: Sequence[Record]) -> None:
        """Make the file hold `records`: append the newest one when the file holds all the
        others and it has no new column, else rewrite the file atomically."""
        if (
            self.rows == len(records) - 1
            and self.rows > 0
            and set(records[-1]) <= set(self.columns)
        ):
            self.outputs.claim(self.path)
            line = _encode(self.columns, records[-1:], header=False)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line)  # one write: the line is there whole or not at all
            finally:
                os.close(fd)
        elif self.rows != len(records):
            self.columns = _columns(records)
            self.outputs.write(self.path, _encode(self.columns, records, header=True))
        self.rows = len(records)


def _columns(records: Sequence[Record]) -> list[str]:
    """Every column any record has, in order of appearance, `seconds` last (as fit records
    it); a resumed run saved before --val-fraction has val_ columns only in its first
    epochs."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    if "seconds" in columns:
        columns = [*(c for c in columns if c != "seconds"), "seconds"]
    return columns


def _encode(columns: list[str], records: Sequence[Record], header: bool) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, restval="")
    if header:
        writer.writeheader()
    writer.writerows(records)
    return text.getvalue().encode()


def read_history(path: Path, epochs: int) -> list[dict[str, float]]:
    """The first `epochs` records of a run's history.csv (the epochs its checkpoint holds;
    later lines are of epochs trained after the last save). Values read back exactly (a
    float's repr); an empty cell is a value the epoch lacked."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))[:epochs]
        records = [{k: float(v) for k, v in row.items() if v} for row in rows]
    except (OSError, ValueError, csv.Error) as err:
        raise UsageError(
            f"cannot read the run's history from {path} ({err}); it is needed to resume the "
            "run: restore the file, or train a new run"
        ) from err
    if len(records) < epochs or any("epoch" not in r for r in records):
        raise UsageError(
            f"{path} holds {len(records)} epochs but the checkpoint {epochs}: the history was "
            "edited or cut; restore it, or train a new run"
        )
    for record in records:
        record["epoch"] = int(record["epoch"])
    return records
