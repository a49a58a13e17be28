"""The math: `ops_for(xp)` gives the functions for a namespace, a fused fast path where one
exists (tested against `generic`), else the array-API reference in `generic`.

Every fast module has the functions of `generic` (same names and arguments) and, for each
activation, an `<name>_inplace(x, xp)` that may overwrite x (callers fall back to `<name>`
where a module has none)."""

from __future__ import annotations

import importlib
from types import ModuleType

import array_api_compat

from . import generic

# namespace test -> fast module; imported on first use, so numpy never imports cupy or torch
_FAST = (
    (array_api_compat.is_numpy_namespace, "numpy"),
    (array_api_compat.is_cupy_namespace, "cupy"),
    (array_api_compat.is_torch_namespace, "torch"),
)
_CHOSEN: dict[str, ModuleType] = {}


def ops_for(xp: ModuleType) -> ModuleType:
    """The ops module to use for arrays of namespace `xp`."""
    chosen = _CHOSEN.get(xp.__name__)
    if chosen is None:
        chosen = generic
        for test, name in _FAST:
            if test(xp):
                chosen = importlib.import_module(f"{__name__}.{name}")
                break
        _CHOSEN[xp.__name__] = chosen
    return chosen
