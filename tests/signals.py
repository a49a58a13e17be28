"""A real `xpnet train` in a subprocess, for tests that send it signals (SIGINT, SIGTERM,
SIGKILL) at chosen moments and compare what it left with an uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import xpnet

TRAIN = ["--hidden", "16", "--backend", "numpy", "--quiet"]  # digits, ~25 ms an epoch


def start(*argv: object) -> subprocess.Popen[str]:
    """`xpnet train argv...` in a new process importing this checkout's xpnet."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "xpnet", "train", *TRAIN, *map(str, argv)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def epochs_logged(out: Path) -> int:
    """The whole lines of the run's history.csv past its header (0 while there is none)."""
    try:
        text = (out / "history.csv").read_text()
    except FileNotFoundError:
        return 0
    return max(0, text.count("\n") - 1)


def wait_for_epochs(process: subprocess.Popen[str], out: Path, n: int, limit: float = 60) -> None:
    """Until history.csv holds `n` epochs (or the process ended)."""
    deadline = time.monotonic() + limit
    while epochs_logged(out) < n and process.poll() is None:
        assert time.monotonic() < deadline, f"no {n} epochs in {out} after {limit} s"
        time.sleep(0.005)


def weights(run: Path) -> dict[str, np.ndarray]:
    return {k: xpnet.to_numpy(v) for k, v in xpnet.load(run, backend="numpy").state_dict().items()}
