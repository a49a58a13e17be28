"""Communicators for data-parallel training: a small protocol and adapters to proven engines.

`fit(..., comm=...)` needs five things of a group of processes: its `rank` and `size`, an
in-place sum of an array across the group (the flat gradient, once per step), a broadcast from
rank 0 (the initial parameters), a sum of a few host numbers (the epoch's loss and accuracy),
a barrier and an abort that ends every process. `SingleProcess` is the default; `MPI` wraps
mpi4py (CPU arrays, or any array through a host copy); `NCCL` sums CuPy arrays on the GPUs
with NCCL, its id exchanged over MPI. mpi4py and CuPy are imported only when an adapter is
made, never by `import xpnet`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from array_api_compat import is_cupy_array, is_numpy_array, is_writeable_array

from .backend import BackendError, asarray, backend_of, dtype_name, to_numpy

__all__ = [
    "MPI",
    "NCCL",
    "Communicator",
    "CommunicatorError",
    "SingleProcess",
    "from_environment",
    "launcher_size",
]

Array = Any

# environment variables in which launchers announce the number of processes
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


class CommunicatorError(RuntimeError):
    """A group of processes that cannot train together (a launcher/library mismatch, ...)."""


class Communicator(Protocol):
    """What data-parallel training needs of a group of processes."""

    rank: int
    size: int

    def allreduce_sum(self, a: Array) -> Array:
        """The elementwise sum of `a` over all processes (in place where the array allows it;
        use the array returned)."""
        ...

    def broadcast(self, a: Array) -> Array:
        """Rank 0's `a` on every process (in place where the array allows it)."""
        ...

    def sum_scalars(self, values: Sequence[float]) -> list[float]:
        """The sums over all processes of a few host numbers."""
        ...

    def barrier(self) -> None: ...

    def abort(self, code: int) -> None:
        """End every process of the group with exit status `code`."""
        ...


class SingleProcess:
    """The group of one: every collective is the identity."""

    rank, size = 0, 1

    def allreduce_sum(self, a: Array) -> Array:
        return a

    def broadcast(self, a: Array) -> Array:
        return a

    def sum_scalars(self, values: Sequence[float]) -> list[float]:
        return [float(v) for v in values]

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        raise SystemExit(code)

    def __repr__(self) -> str:
        return "SingleProcess()"


def _host_view(a: Array) -> np.ndarray | None:
    """A NumPy array sharing a's memory (NumPy arrays, CPU torch tensors and array-api-strict
    arrays through DLPack), or None where there is none to write through."""
    if not is_writeable_array(a) or is_cupy_array(a):
        return None
    if is_numpy_array(a):
        return a if a.flags.c_contiguous else None
    try:
        view = np.from_dlpack(a)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return None
    return view if view.flags.c_contiguous and view.flags.writeable else None


def _like(host: np.ndarray, a: Array) -> Array:
    """`host` moved to a's library, device and dtype."""
    return asarray(host, like=backend_of(a), dtype=dtype_name(a.dtype))


class MPI:
    """MPI through mpi4py (`mpiexec -n N ...`, `srun`): host arrays are summed in place, any
    other array through a host copy. `comm` defaults to COMM_WORLD."""

    def __init__(self, comm: Any = None) -> None:
        try:
            from mpi4py import MPI as mpi
        except ImportError as err:
            raise CommunicatorError(
                "data-parallel training needs mpi4py: pip install 'xpnet[mpi]' (mpi4py and "
                "MPICH), or build mpi4py against your cluster's MPI"
            ) from err
        self._mpi = mpi
        self.comm = comm if comm is not None else mpi.COMM_WORLD
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()

    @property
    def local_rank(self) -> int:
        """This process's rank among those on its machine (the GPU it should take)."""
        return int(self.comm.Split_type(self._mpi.COMM_TYPE_SHARED).Get_rank())

    def allreduce_sum(self, a: Array) -> Array:
        view = _host_view(a)
        if view is not None:
            self.comm.Allreduce(self._mpi.IN_PLACE, view, op=self._mpi.SUM)
            return a
        host = np.ascontiguousarray(to_numpy(a))
        self.comm.Allreduce(self._mpi.IN_PLACE, host, op=self._mpi.SUM)
        return _like(host, a)

    def broadcast(self, a: Array) -> Array:
        view = _host_view(a)
        if view is not None:
            self.comm.Bcast(view, root=0)
            return a
        host = np.ascontiguousarray(to_numpy(a))
        self.comm.Bcast(host, root=0)
        return _like(host, a)

    def sum_scalars(self, values: Sequence[float]) -> list[float]:
        buffer = np.asarray(values, dtype=np.float64)
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        return [float(v) for v in buffer]

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)

    def __repr__(self) -> str:
        return f"MPI(rank={self.rank}, size={self.size})"


class NCCL(MPI):
    """NCCL for the gradient sums and broadcasts of CuPy arrays (one GPU per process, GPU
    `local_rank` on each machine), MPI for the rest and to hand out NCCL's id."""

    def __init__(self, comm: Any = None) -> None:
        super().__init__(comm)
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as err:
            raise CommunicatorError(
                "NCCL needs CuPy with NCCL: pip install 'xpnet[cuda12]' nvidia-nccl-cu12 "
                "(or the cuda13 pair)"
            ) from err
        self._cupy, self._nccl = cupy, nccl
        cupy.cuda.Device(self.local_rank).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self._comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _nccl_type(self, a: Array) -> int:
        types = {"float32": self._nccl.NCCL_FLOAT32, "float64": self._nccl.NCCL_FLOAT64}
        if str(a.dtype) not in types:
            raise BackendError(f"NCCL sums float32 or float64 arrays here, not {a.dtype}")
        return types[str(a.dtype)]

    def allreduce_sum(self, a: Array) -> Array:
        if not is_cupy_array(a):
            return super().allreduce_sum(a)
        stream = self._cupy.cuda.get_current_stream().ptr
        self._comm.allReduce(
            a.data.ptr, a.data.ptr, a.size, self._nccl_type(a), self._nccl.NCCL_SUM, stream
        )
        return a

    def broadcast(self, a: Array) -> Array:
        if not is_cupy_array(a):
            return super().broadcast(a)
        stream = self._cupy.cuda.get_current_stream().ptr
        self._comm.bcast(a.data.ptr, a.size, self._nccl_type(a), 0, stream)
        return a

    def __repr__(self) -> str:
        return f"NCCL(rank={self.rank}, size={self.size})"


def launcher_size() -> int:
    """The number of processes a launcher (mpiexec, mpirun, srun with PMI) started, from its
    environment; 1 when there is none."""
    sizes = [int(os.environ[k]) for k in _LAUNCHER_SIZE if os.environ.get(k, "").isdigit()]
    return max(sizes, default=1)


def from_environment(gpu: bool = False) -> Communicator:
    """The group this process was launched in: `SingleProcess` unless a launcher started
    several, then `MPI` (or `NCCL` with `gpu`). Refuses an MPI library that sees fewer
    processes than the launcher started (the launcher of another MPI: every process would
    train alone and write the same run)."""
    expected = launcher_size()
    if expected == 1:
        return SingleProcess()
    comm: Communicator = NCCL() if gpu else MPI()
    if comm.size != expected:
        raise CommunicatorError(
            f"the launcher started {expected} processes but MPI sees {comm.size}: mpiexec "
            "and mpi4py come from different MPI libraries; use the mpiexec of the "
            "environment xpnet is installed in (e.g. .venv/bin/mpiexec)"
        )
    return comm
