"""`--standardize`: each feature shifted and scaled by the training split's mean and standard
deviation, so that unscaled data (iris in centimetres, pixel values 0..255) trains as scaled
data does. The numbers are stored in the run's checkpoints, and `evaluate`, `predict` and
`--resume` apply the very same ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data import Dataset

__all__ = ["METADATA_KEY", "Standardization"]

METADATA_KEY = "standardize"  # where a checkpoint's metadata keeps the numbers


@dataclasses.dataclass(frozen=True, eq=False)
class Standardization:
    """x -> (x - mean) / std per feature (float64 on the host); a constant feature keeps
    std 1, so it becomes 0 rather than NaN."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> Standardization:
        """The mean and standard deviation of each column of the training split `X`."""
        std = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(std > 0, std, 1.0))

    @classmethod
    def stored(cls, metadata: Mapping[str, Any]) -> Standardization | None:
        """The standardization a checkpoint's metadata holds (None: the run had none)."""
        numbers = metadata.get(METADATA_KEY)
        if not isinstance(numbers, dict):
            return None
        return cls(np.asarray(numbers["mean"], float), np.asarray(numbers["std"], float))

    def to_metadata(self) -> dict[str, Any]:
        """{METADATA_KEY: {"mean": [...], "std": [...]}} for a checkpoint (JSON floats
        round-trip exactly)."""
        return {METADATA_KEY: {"mean": self.mean.tolist(), "std": self.std.tolist()}}

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """X standardized."""
        return (X - self.mean) / self.std

    def dataset(self, data: Dataset) -> Dataset:
        """`data` with its features standardized."""
        return dataclasses.replace(data, X=self(data.X))
