"""Every module of the package says what it exports: `__all__` lists names that exist and
every public function and class the module defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import xpnet

OPTIONAL = {"xpnet.ops.cupy": "cupy", "xpnet.ops.torch": "torch"}
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(xpnet.__path__, "xpnet.") if m.name != "xpnet.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_the_public_names_a_module_defines(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    defined = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == name
    }
    assert defined <= set(exported), f"{name} leaves out {sorted(defined - set(exported))}"


def test_the_package_exports_the_contract():
    for name in ["MLP", "SGD", "Adam", "AdamW", "fit", "save", "load", "gradcheck", "to_numpy"]:
        assert name in xpnet.__all__ and hasattr(xpnet, name)
