"""What several test modules share: running the CLI in-process, and the project's own
mpiexec."""

from __future__ import annotations

import sys
from pathlib import Path

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
