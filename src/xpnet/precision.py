"""Precision policies, by Lightning's names: "32" (everything in the net's dtype),
"bf16-mixed" and "16-mixed" (the matrix products, and the activations they feed, in bfloat16
or float16 from a low-precision copy of the weights; master weights, gradients, optimizer
state, the loss and every reduction in float32; "16-mixed" with dynamic loss scaling).

A policy says what to do; `compute_dtype` says whether a backend can do it, and refuses
clearly where it cannot (NumPy and array-api-strict have no fast low-precision products)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .backend import Backend

__all__ = [
    "BF16_MIXED",
    "FP16_MIXED",
    "FULL",
    "PRECISIONS",
    "Precision",
    "as_precision",
    "compute_dtype",
]

# the backends whose libraries multiply bfloat16/float16 matrices at speed (tensor cores,
# oneDNN); NumPy would emulate them elementwise (ml_dtypes) at a fraction of float32's speed
_LOW_PRECISION_BACKENDS = ("torch", "cupy", "jax")


@dataclasses.dataclass(frozen=True)
class Precision:
    """A precision policy: its `name`, the dtype the products run in (`compute`, None for the
    net's own) and whether the loss is scaled dynamically (float16's narrow range)."""

    name: str
    compute: str | None
    loss_scaling: bool

    @property
    def mixed(self) -> bool:
        return self.compute is not None

    def __str__(self) -> str:
        return self.name


FULL = Precision("32", None, False)
BF16_MIXED = Precision("bf16-mixed", "bfloat16", False)
FP16_MIXED = Precision("16-mixed", "float16", True)
PRECISIONS: dict[str, Precision] = {p.name: p for p in (FULL, BF16_MIXED, FP16_MIXED)}


def as_precision(value: object) -> Precision:
    """The policy a name stands for ("32", "bf16-mixed", "16-mixed"), or the policy itself."""
    if isinstance(value, Precision):
        return value
    policy = PRECISIONS.get(value) if isinstance(value, str) else None
    if policy is None:
        raise ValueError(
            f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {value!r}"
        )
    return policy


def compute_dtype(policy: Precision, backend: Backend, dtype_name: str) -> Any:
    """The dtype object `policy`'s products run in on `backend` (None for "32"), or a
    ValueError saying why this net cannot run it and what can."""
    if policy.compute is None:
        return None
    if backend.name not in _LOW_PRECISION_BACKENDS:
        raise ValueError(
            f"precision {policy.name!r} needs fast {policy.compute} matrix products, which "
            f"backend {backend.name!r} lacks; use backend 'torch' (CPU or CUDA), 'cupy' or "
            "'jax', or precision '32'"
        )
    if dtype_name != "float32":
        raise ValueError(
            f"precision {policy.name!r} keeps float32 master weights, but the net is "
            f"{dtype_name}; build it with dtype='float32'"
        )
    dtype = getattr(backend.xp, policy.compute, None)
    if dtype is None:
        raise ValueError(
            f"precision {policy.name!r}: the installed {backend.name} has no {policy.compute}; "
            "use precision '16-mixed' (float16) or backend 'torch'"
        )
    return dtype
