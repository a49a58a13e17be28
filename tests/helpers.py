"""What several test modules share: running the CLI in-process, the project's own mpiexec,
and the comparison of weights with a stored run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

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
