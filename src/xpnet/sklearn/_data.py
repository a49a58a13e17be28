"""Training data on the net's device, or sparse on the host and densified per batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from ..backend import asarray
from ..model import MLP
from ..scoring import batch_bounds

__all__ = ["Data", "forward_all"]

Array = Any


class Data:
    """X (n, n_features), targets T (n, n_outputs) and sample weights w (n,) or None, for one
    net. Dense X, T and w are moved to the net's device and dtype once; a sparse X stays a
    CSR matrix on the host and `batch` densifies only the rows it returns."""

    def __init__(self, net: MLP, X: Any, T: Any, w: Any = None, *, placed: bool = False) -> None:
        self.net = net
        self.sparse = scipy.sparse.issparse(X)
        if placed:
            self.X, self.T, self.w = X, T, w
        else:
            self.X = X.tocsr() if self.sparse else asarray(X, like=net)
            self.T = asarray(T, like=net)
            self.w = None if w is None else asarray(w, like=net)
        self.n = int(self.X.shape[0])

    def take(self, rows: np.ndarray) -> Data:
        """The samples at host indices `rows`, in that order."""
        backend = self.net.backend
        on_device = backend.from_host(np.asarray(rows, dtype=np.int64))
        xp = backend.xp

        def pick(a: Array) -> Array:
            return xp.take(a, on_device, axis=0)

        X = self.X[rows] if self.sparse else pick(self.X)
        w = None if self.w is None else pick(self.w)
        return Data(self.net, X, pick(self.T), w, placed=True)

    def batch(self, start: int, stop: int) -> tuple[Array, Array, Array | None]:
        """(X, T, w) of samples start..stop-1, dense, on the net's device."""
        X = self.X[start:stop] if self.sparse else self.X[start:stop, ...]
        X = asarray(X.toarray(), like=self.net) if self.sparse else X
        w = None if self.w is None else self.w[start:stop]
        return X, self.T[start:stop, ...], w


def forward_all(net: MLP, X: Any, batch_size: int = 4096) -> Array:
    """The net's outputs for every row of X (on the net's device, or sparse on the host), in
    batches of `batch_size` rows."""
    sparse = scipy.sparse.issparse(X)
    if sparse:
        X = X.tocsr()
    else:
        X = asarray(X, like=net)
    parts = []
    for start, stop in batch_bounds(int(X.shape[0]), batch_size):
        rows = X[start:stop] if sparse else X[start:stop, ...]
        parts.append(net.forward(asarray(rows.toarray(), like=net) if sparse else rows))
    return parts[0] if len(parts) == 1 else net.backend.xp.concat(parts, axis=0)
