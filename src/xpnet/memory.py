"""What a net's parameters need in memory, checked before anything is allocated, so that a
net too big for the machine is refused in one sentence rather than by the allocator."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .backend import Backend, available_memory, host_available_memory, on_host

__all__ = ["check_parameters_fit"]


def check_parameters_fit(
    shapes: Mapping[str, tuple[int, ...]], backend: Backend, dtype: str
) -> None:
    """Raise MemoryError, naming the sizes, when the parameters of `shapes` do not fit: the
    host's float64 draw of the largest one and its cast copy, and on the device the flat
    parameters and gradients (in `dtype`). Training needs more (optimizer state,
    activations): the CLI estimates that too; this refuses only what cannot even be built."""
    itemsize = np.dtype(dtype).itemsize
    params = sum(math.prod(shape) for shape in shapes.values())
    largest = max((math.prod(shape) for shape in shapes.values()), default=0)
    host = 8 * largest + itemsize * largest
    device = 2 * itemsize * params
    if on_host(backend):
        needs = [(host + device, host_available_memory(), "the host")]
    else:
        needs = [
            (host, host_available_memory(), "the host"),
            (device, available_memory(backend), str(backend)),
        ]
    for need, free, where in needs:
        if free is not None and need > free:
            raise MemoryError(
                f"a net of {params:.3g} parameters needs about {_gib(need)} to build (the "
                f"largest parameter has {largest:.3g} entries, drawn in float64) but {where} "
                f"has {_gib(free)} free; use fewer or narrower layers"
            )


def _gib(n: float) -> str:
    gib = n / 2**30
    return f"{gib:.3g} GiB" if gib < 1000 else f"{gib:,.0f} GiB"
