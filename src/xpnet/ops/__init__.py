"""The math: `ops_for(xp)` gives the functions for a namespace: those of `generic` (the
array-API reference), with a fused fast path's own functions in their place where the
namespace has one (ops/numpy.py, ops/torch.py, ops/cupy.py, ops/jax.py, each tested against
`generic`).

A fast module defines only what it speeds up (its `__all__`), with `generic`'s names and
arguments. Every activation has an `<name>_inplace(x, xp)` that may overwrite x (generic's
returns a new array). A fast module may also offer `bias_<name>_inplace(y, b, xp)`: a layer's
bias add and activation in one pass over its product y (CuPy: one kernel); where it is
absent, the layers add the bias and call `<name>_inplace`."""

from __future__ import annotations

import importlib
from types import ModuleType, SimpleNamespace
from typing import Any

import array_api_compat

from . import generic

__all__ = ["ops_for"]

# namespace test -> fast module; imported on first use, so numpy never imports cupy or torch
_FAST = (
    (array_api_compat.is_numpy_namespace, "numpy"),
    (array_api_compat.is_cupy_namespace, "cupy"),
    (array_api_compat.is_torch_namespace, "torch"),
    (array_api_compat.is_jax_namespace, "jax"),
)
_CHOSEN: dict[str, Any] = {}


def _own_functions(module: ModuleType) -> dict[str, Any]:
    """The functions a module exports (its `__all__`)."""
    return {name: getattr(module, name) for name in module.__all__}


def ops_for(xp: ModuleType) -> Any:
    """The ops to use for arrays of namespace `xp`: `generic` itself, or generic's functions
    overlaid with a fast module's."""
    chosen = _CHOSEN.get(xp.__name__)
    if chosen is None:
        chosen = generic
        for test, name in _FAST:
            if test(xp):
                fast = importlib.import_module(f"{__name__}.{name}")
                chosen = SimpleNamespace(**{**_own_functions(generic), **_own_functions(fast)})
                break
        _CHOSEN[xp.__name__] = chosen
    return chosen
