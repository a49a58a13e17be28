"""Data-parallel `xpnet train` under a launcher (`mpiexec -n N`, `srun`): the group this process
belongs to, the GPU each rank takes, the threads each rank may use, and ending the whole job
when one rank fails.

Outside a launcher the group is `SingleProcess` and nothing here imports mpi4py. Inside one,
rank 0 alone prints and writes; an error on any rank is reported in one line that names the
rank, and `MPI_Abort` ends every rank (the others would otherwise wait forever in the next
collective). A rank other than 0 waits `REPORT_DELAY` seconds before it reports, so that an
error every rank hits (a missing data file) is reported once, by rank 0, whose abort ends the
others while they wait.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .. import distributed
from ..backend import Backend, limit_library_threads
from ..distributed import Communicator, SingleProcess

__all__ = [
    "REPORT_DELAY",
    "THREAD_VARIABLES",
    "before_report",
    "end_job",
    "gpu_communicator",
    "is_lead",
    "join",
    "limit_threads",
    "local_rank",
    "reset",
    "where",
]

REPORT_DELAY = 1.0  # seconds a rank other than 0 waits before it reports an error and aborts
# set by the user, these decide the threads; xpnet then leaves them alone
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_group: Communicator = SingleProcess()
_local = (0, 1)  # (rank, size) among the processes on this machine
_limits: list[Any] = []  # keeps threadpoolctl's limits alive


def join() -> Communicator:
    """The group this process was launched in (`SingleProcess` without a launcher), remembered
    so that an error can end the whole job."""
    global _group, _local
    if distributed.launcher_size() == 1:
        return _group
    comm = distributed.from_environment()
    _group = comm
    mpi_comm = getattr(comm, "comm", None)
    if mpi_comm is not None:
        from mpi4py import MPI

        shared = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)
        _local = (int(shared.Get_rank()), int(shared.Get_size()))
        shared.Free()
    return comm


def gpu_communicator(comm: Communicator, backend: Backend) -> Communicator:
    """NCCL for a group training on CuPy (gradients summed GPU to GPU), else `comm` itself."""
    global _group
    if comm.size == 1 or not backend.library.nccl:
        return comm
    _group = distributed.NCCL(getattr(comm, "comm", None))
    return _group


def local_rank() -> int | None:
    """This process's rank among the group's processes on this machine (the GPU it takes by
    default: `backend.rank_device`); None for a single process."""
    rank, size = _local
    return None if size == 1 and _group.size == 1 else rank


def limit_threads() -> int | None:
    """Give each of the ranks sharing this machine an equal share of its cores for BLAS and
    OpenMP (and torch's own pool), unless the user set a *_NUM_THREADS variable; the number of
    threads per rank, or None where nothing was limited."""
    size = _local[1]
    if size == 1 or any(os.environ.get(v) for v in THREAD_VARIABLES):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // size)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the mpi extra brings it; without it, say so once and go on
        if is_lead():
            print(
                "xpnet: threadpoolctl is not installed, so BLAS threads are not limited per "
                "rank; pip install 'xpnet[mpi]' or set OMP_NUM_THREADS",
                file=sys.stderr,
            )
    else:
        _limits.append(threadpool_limits(threads))
    limit_library_threads(threads)
    return threads


def is_lead() -> bool:
    """Whether this process prints and writes: rank 0, or the only process."""
    return _group.rank == 0


def where() -> str:
    """ " (rank 1 of 2)" for an error message in a group, "" for a single process."""
    return f" (rank {_group.rank} of {_group.size})" if _group.size > 1 else ""


def before_report() -> None:
    """In a group, let rank 0 report an error every rank hits: the others wait a moment."""
    if _group.size > 1 and _group.rank != 0:
        time.sleep(REPORT_DELAY)


def end_job(status: int) -> None:
    """In a group, end every rank now with `status` (MPI_Abort); alone, do nothing (the caller
    returns the status)."""
    if _group.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        _group.abort(status)


def reset() -> None:
    """Forget the group (for tests that call `main` several times in one process)."""
    global _group, _local
    _group, _local = SingleProcess(), (0, 1)
