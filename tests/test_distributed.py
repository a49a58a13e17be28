"""Data-parallel training: sharding and weighting proven in-process (a group of threads
standing in for processes), then real `mpiexec -n 2/3` runs of a library script, which must
give the one-process parameters to rounding, bit-identical on every rank."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from helpers import MPIEXEC, needs_mpi

import xpnet
from xpnet import distributed
from xpnet.train import shard_bounds


def test_shards_are_contiguous_near_equal_and_cover_the_batch():
    for start, stop, size in [(0, 10, 3), (32, 37, 2), (5, 7, 3), (0, 1, 4), (0, 12, 4)]:
        pieces = [shard_bounds(start, stop, r, size) for r in range(size)]
        assert pieces[0][0] == start and pieces[-1][1] == stop
        assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
        lengths = [hi - lo for lo, hi in pieces]
        assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def _like(host, a):
    return xpnet.asarray(host, like=xpnet.backend_of(a), dtype=str(host.dtype))


class ThreadGroup:
    """`size` communicators for threads of one process: sums taken in rank order, so every
    member gets bit-identical results, as from MPI."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.barrier = threading.Barrier(size, timeout=30)
        self.slots: list = [None] * size

    def _gather(self, rank: int, value):
        self.slots[rank] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()
        return values

    def member(self, rank: int) -> ThreadComm:
        return ThreadComm(self, rank)


class ThreadComm:
    def __init__(self, group: ThreadGroup, rank: int) -> None:
        self.group, self.rank, self.size = group, rank, group.size

    def allreduce_sum(self, a):
        values = self.group._gather(self.rank, xpnet.to_numpy(a).copy())
        total = values[0]
        for v in values[1:]:
            total = total + v
        return _like(total, a)

    def broadcast(self, a):
        return _like(self.group._gather(self.rank, xpnet.to_numpy(a).copy())[0], a)

    def sum_scalars(self, values):
        return [sum(col) for col in zip(*self.group._gather(self.rank, list(values)), strict=True)]

    def barrier(self):
        self.group.barrier.wait()

    def abort(self, code):
        raise SystemExit(code)


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return X, y


LOSSES = {
    "softmax_ce": (lambda: xpnet.SoftmaxCrossEntropyLoss(), "identity"),
    "sse": (lambda: xpnet.SSELoss(), "sigmoid"),
}


def _fit(backend, loss_name, comm=None, seed=0, epochs=3):
    make_loss, output = LOSSES[loss_name]
    X, y = _problem()
    net = xpnet.MLP([5, 6, 3], output=output, backend=backend, dtype="float64", seed=seed)
    opt = xpnet.Adam(lr=0.02, schedule=xpnet.optim.Step(every=2, gamma=0.5))
    hist = xpnet.fit(
        net, X, y, loss=make_loss(), optimizer=opt, epochs=epochs, batch_size=7, comm=comm
    )
    return {k: xpnet.to_numpy(v) for k, v in net.parameters().items()}, hist


@pytest.mark.float64
@pytest.mark.parametrize("loss_name", LOSSES)
def test_a_group_trains_as_one_process(backend, loss_name):
    """Batches of 7 over 4 members, on every backend: uneven shards (2, 2, 2, 1), and the last
    batch (2 rows) leaves members idle. Different seeds per member prove rank 0's weights are
    broadcast."""
    _assert_group_trains_as_one_process(backend, loss_name, 4)


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("size", [2, 3])
def test_other_group_sizes_train_as_one_process(loss_name, size):
    """2 and 3 members (shards of 4 and 3; 3, 2 and 2): how a batch is cut does not depend
    on the library, so NumPy proves it."""
    _assert_group_trains_as_one_process(xpnet.get_backend("numpy"), loss_name, size)


def _assert_group_trains_as_one_process(backend, loss_name, size):
    alone, alone_hist = _fit(backend, loss_name)
    group = ThreadGroup(size)
    results: list = [None] * size

    def member(rank):
        results[rank] = _fit(backend, loss_name, comm=group.member(rank), seed=rank)

    threads = [threading.Thread(target=member, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "a member failed"
    for params, hist in results:
        for k, v in params.items():
            np.testing.assert_allclose(v, alone[k], rtol=1e-9, atol=1e-12)
            np.testing.assert_array_equal(v, results[0][0][k])  # members agree exactly
        assert hist["loss"] == pytest.approx(alone_hist["loss"], rel=1e-9)
        assert hist["accuracy"] == alone_hist["accuracy"] and hist["lr"] == alone_hist["lr"]


def test_naive_averaging_would_be_wrong_for_a_summed_loss():
    """The weighting matters: the SSE group result differs from a one-process run whose
    gradient were divided by the group size (what averaging gradients does)."""
    alone, _ = _fit("numpy", "sse", epochs=1)
    group = ThreadGroup(2)
    results: list = [None, None]

    class Averaging(ThreadComm):
        def allreduce_sum(self, a):
            return super().allreduce_sum(a) * 0.5

    def member(rank):
        results[rank] = _fit("numpy", "sse", comm=Averaging(group, rank), epochs=1)

    threads = [threading.Thread(target=member, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not np.allclose(results[0][0]["W1"], alone["W1"], rtol=1e-6)


def test_a_launcher_mpi_mismatch_is_refused(monkeypatch):
    class LonelyMPI:
        rank, size = 0, 1

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(distributed, "MPI", LonelyMPI)
    with pytest.raises(distributed.CommunicatorError, match="launcher started 2 processes but"):
        distributed.from_environment()
    monkeypatch.delenv("PMI_SIZE")
    assert isinstance(distributed.from_environment(), distributed.SingleProcess)


def test_import_xpnet_does_not_import_mpi4py():
    code = "import sys, xpnet, xpnet.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- real MPI ---------------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import xpnet
    from xpnet.distributed import from_environment

    comm = from_environment()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    loss, output = {"sse": (xpnet.SSELoss(), "sigmoid"),
                    "softmax_ce": (xpnet.SoftmaxCrossEntropyLoss(), "identity")}[sys.argv[1]]
    net = xpnet.MLP([5, 6, 3], output=output, dtype="float64", seed=comm.rank)
    xpnet.fit(net, X, y, loss=loss, optimizer=xpnet.Adam(lr=0.02), epochs=3, batch_size=7,
              comm=comm)
    params = {k: v.tolist() for k, v in net.parameters().items()}
    with open(f"{sys.argv[2]}/rank{comm.rank}.json", "w") as f:
        json.dump({"size": comm.size, "params": params}, f)
    """
)


def _mpiexec(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [str(MPIEXEC), "-n", str(n), sys.executable, "-m", "mpi4py", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@needs_mpi
@pytest.mark.parametrize(("n", "loss_name"), [(2, "sse")])  # the CLI's mpiexec runs: 2 and 3
def test_mpiexec_ranks_train_as_one_process(tmp_path, n, loss_name):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = _mpiexec(n, str(script), loss_name, str(tmp_path))
    assert done.returncode == 0, done.stderr
    X, y = _problem()
    make_loss, output = LOSSES[loss_name]
    net = xpnet.MLP([5, 6, 3], output=output, dtype="float64", seed=0)
    xpnet.fit(net, X, y, loss=make_loss(), optimizer=xpnet.Adam(lr=0.02), epochs=3, batch_size=7)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(n)]
    assert [r["size"] for r in ranks] == [n] * n
    for k, v in net.parameters().items():
        for r in ranks:
            np.testing.assert_allclose(r["params"][k], v, rtol=1e-9, atol=1e-12)
            assert r["params"][k] == ranks[0]["params"][k]  # bit-identical across ranks


@needs_mpi
def test_a_failing_rank_ends_the_job_promptly(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import time\nfrom xpnet.distributed import from_environment\n"
        "comm = from_environment()\n"
        "if comm.rank == 1:\n    raise ValueError('rank 1 broke')\n"
        "comm.barrier()\n"
    )
    done = _mpiexec(2, str(script), timeout=60)
    assert done.returncode != 0 and "rank 1 broke" in done.stderr
