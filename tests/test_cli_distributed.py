"""`mpiexec -n N xpnet train`: data-parallel training from the command line. Real `mpiexec`
runs (this environment's, next to sys.executable) must give the one-process run's weights to
rounding, write one run directory, resume exactly with any number of ranks, and end promptly
when a rank fails; in-process tests cover the error line and the per-rank devices."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import MPIEXEC, needs_mpi

import xpnet
from xpnet.backend import rank_device
from xpnet.cli import main, parallel

XPNET = [sys.executable, "-m", "xpnet"]


def mpiexec(n: int, *argv, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`mpiexec -n n python -m xpnet argv` with no *_NUM_THREADS set (xpnet limits them)."""
    env = {k: v for k, v in os.environ.items() if k not in parallel.THREAD_VARIABLES}
    return subprocess.run(
        [str(MPIEXEC), "-n", str(n), *XPNET, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def params(run: Path) -> dict[str, np.ndarray]:
    return xpnet.load(run, backend="numpy").state_dict()


def assert_same_weights(a: Path, b: Path) -> None:
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        np.testing.assert_allclose(pa[name], pb[name], rtol=1e-9, atol=1e-12, err_msg=name)


# batch 7 of 2 ranks: uneven shards of 4 and 3
ARGS = ["--hidden", "8", "--dtype", "float64", "--batch-size", "7", "--seed", "3"]


@needs_mpi
# a mean loss on 2 ranks, a summed one on 3 (uneven shards); every pairing of loss and group
# size is trained in-process by tests/test_distributed.py
@pytest.mark.parametrize(("n", "loss"), [(2, "softmax_ce"), (3, "sse")])
def test_ranks_train_as_one_process_and_write_one_run(small, tmp_path, capsys, n, loss):
    argv = ["train", "--data", small, *ARGS, "--loss", loss, "--epochs", "3"]
    done = mpiexec(n, *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs  # rank 0 alone made and wrote it
    assert sorted(p.name for p in runs[0].iterdir()) == [
        "checkpoint.safetensors",
        "config.json",
        "curves.png",
        "history.csv",
        "metrics.json",
    ]
    assert json.loads((runs[0] / "config.json").read_text())["processes"] == n
    assert json.loads((runs[0] / "metrics.json").read_text())["processes"] == n
    # rank 0 alone printed: one header, one result, one "saved in"
    assert done.stdout.count(f"data-parallel on {n} processes (MPI") == 1
    assert re.search(r"\(MPI, \d+ threads? each\)", done.stdout), done.stdout
    assert done.stdout.count("saved in") == 1
    assert main([str(a) for a in [*argv, "--out", tmp_path / "one"]]) == 0
    capsys.readouterr()
    assert_same_weights(runs[0], tmp_path / "one")
    one = xpnet.load_checkpoint(tmp_path / "one", backend="numpy").history
    two = xpnet.load_checkpoint(runs[0], backend="numpy").history
    for a, b in zip(one, two, strict=True):  # the group's loss is the one-process loss
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-9)
        assert a["accuracy"] == b["accuracy"]


@needs_mpi
def test_a_distributed_run_resumes_exactly_with_any_number_of_ranks(small, tmp_path, capsys):
    base = ["train", "--data", small, *ARGS]
    assert main([str(a) for a in [*base, "--epochs", "4", "--out", tmp_path / "one"]]) == 0
    run = tmp_path / "run"
    done = mpiexec(2, *base, "--epochs", "2", "--out", run, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0  # one process
    done = mpiexec(2, "train", "--resume", run, "--epochs", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resuming at epoch 3" in done.stdout
    capsys.readouterr()
    assert xpnet.load_checkpoint(run, backend="numpy").epoch == 4
    assert_same_weights(run, tmp_path / "one")


@needs_mpi
def test_a_failing_rank_ends_the_job_promptly_naming_the_rank(small, tmp_path):
    # rank 0 is fine and would wait for rank 1 forever; rank 1's data does not exist
    good = [*XPNET, "train", "--data", str(small), "--epochs", "50", "--out", "r"]
    bad = [*XPNET, "train", "--data", "missing.npz", "--epochs", "50", "--out", "r"]
    env = {k: v for k, v in os.environ.items() if k not in parallel.THREAD_VARIABLES}
    started = time.monotonic()
    done = subprocess.run(
        [str(MPIEXEC), "-n", "1", *good, ":", "-n", "1", *bad],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert elapsed < 30, elapsed
    ours = [line for line in done.stderr.splitlines() if line.startswith("xpnet")]
    assert ours == [
        f"xpnet train: error (rank 1 of 2): no such file: {tmp_path}/missing.npz "
        "(built-in datasets are: digits, xor, mnist, fashion-mnist)"
    ], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()  # rank 0 waited for every rank's setup


@needs_mpi
def test_a_reader_that_leaves_after_the_header_does_not_cut_a_group_run_short(small, tmp_path):
    """`mpiexec -n 2 xpnet train | head -1`: mpiexec ends the job when it cannot forward a
    line, so rank 0 prints nothing more to stdout until the run's files are written."""
    run = tmp_path / "run"
    argv = ["train", "--data", small, *ARGS, "--epochs", "6", "--out", run]
    env = {k: v for k, v in os.environ.items() if k not in parallel.THREAD_VARIABLES}
    with (
        (tmp_path / "stderr").open("w") as stderr,
        subprocess.Popen(
            [str(MPIEXEC), "-n", "2", *XPNET, *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path,
        ) as process,
    ):
        assert "data-parallel on 2 processes" in process.stdout.readline()
        process.stdout.close()
        process.wait(timeout=120)  # its status is mpiexec's, killed by SIGPIPE or not
    log = (tmp_path / "stderr").read_text()
    assert xpnet.load_checkpoint(run, backend="numpy").epoch == 6, log
    assert json.loads((run / "metrics.json").read_text())["finished"] is True
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 6


class FakeGroup:
    """Rank 1 of 2, whose abort exits as MPI_Abort would."""

    rank, size = 1, 2

    def abort(self, code):
        raise SystemExit(code)

    def barrier(self):
        pass


def test_an_error_in_a_group_names_the_rank_and_ends_the_job(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(parallel, "_group", FakeGroup())
    monkeypatch.setattr(parallel, "REPORT_DELAY", 0.0)
    with pytest.raises(SystemExit) as ended:
        main(["train", "--data", str(tmp_path / "none.npz")])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("xpnet train: error (rank 1 of 2): no such file") and err.count("\n") == 1


def test_each_rank_takes_its_own_gpu(monkeypatch):
    monkeypatch.setattr(parallel, "_group", FakeGroup())
    monkeypatch.setattr(parallel, "_local", (1, 2))
    assert parallel.local_rank() == 1
    assert rank_device("cupy", None, parallel.local_rank()) == 1
    monkeypatch.setattr(parallel, "_group", xpnet.distributed.SingleProcess())
    monkeypatch.setattr(parallel, "_local", (0, 1))
    assert parallel.local_rank() is None
    assert rank_device("cupy", None, parallel.local_rank()) is None


def test_threads_are_left_alone_when_the_user_set_them(monkeypatch):
    monkeypatch.setattr(parallel, "_local", (0, 2))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel.limit_threads() is None
    monkeypatch.setattr(parallel, "_local", (0, 1))
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert parallel.limit_threads() is None  # alone on the machine: nothing to share
