"""What several test modules share: running the CLI in-process, the project's own mpiexec,
the comparison of weights with a stored run, the editing of a saved checkpoint and running
a docs page's code."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

from xpnet.backend import to_numpy
from xpnet.checkpoint import _digest
from xpnet.cli import main

MPIEXEC = Path(sys.executable).parent / "mpiexec"  # this environment's, never a system one
try:
    import mpi4py
except ImportError:
    mpi4py = None
needs_mpi = pytest.mark.skipif(
    mpi4py is None or not MPIEXEC.exists(),
    reason="mpi4py and its mpiexec are not installed here (pip install 'xpnet[mpi]')",
)


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """main(argv) -> (exit status, stdout, stderr) of this call alone (what was printed
    before it is dropped)."""
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_same_training(got: np.ndarray, want: np.ndarray, err_msg: str = "") -> None:
    """float32 weights of the same training run as a stored file, up to the rounding of
    another BLAS build: this machine reproduces the stored runs bit for bit, OpenBLAS on
    another CPU differs by about 2e-7 after an epoch, and a lost optimizer state or a missed
    step moves the weights by about 1e-3."""
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=err_msg)


def rewrite_checkpoint(
    path: Path,
    header_edit: Callable[[dict[str, Any]], Any] | None = None,
    tensors_edit: Callable[[dict[str, np.ndarray]], Any] | None = None,
    sign: bool = True,
) -> None:
    """Edit a saved file's xpnet header and/or tensors and write it back as safetensors,
    re-signed (sign=False keeps the old SHA-256, as a corrupted file would)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["xpnet"])
    tensors = safetensors.numpy.load(data)
    (header_edit or (lambda h: None))(header)
    (tensors_edit or (lambda t: None))(tensors)
    if sign:
        header["sha256"] = _digest(tensors, header)
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"xpnet": json.dumps(header)}))


def run_python_blocks(page: Path) -> dict[str, Any]:
    """Run the ```python blocks of a docs page in order, in one namespace (in the current
    directory: give the test a fresh one); returns the namespace."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for code in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
        exec(compile(code, str(page), "exec"), namespace)
    return namespace


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_T = np.array([[0], [1], [1], [0]], dtype=np.float64)


def blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian classes in 4 features: X (n, 4) and integer labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) * 0.5 + np.eye(3, 4)[labels] * 2.0
    return X, labels


def host_weights(net: Any) -> dict[str, np.ndarray]:
    """A net's state as NumPy arrays, by name."""
    return {k: to_numpy(v) for k, v in net.state_dict().items()}
