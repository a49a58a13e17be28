"""Every module of the package says what it exports: `__all__` lists names that exist and
every public function and class the module defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import xpnet

# module (or package) -> the library it needs, which a minimal install lacks
OPTIONAL = {
    "xpnet.ops.cupy": "cupy",
    "xpnet.ops.torch": "torch",
    "xpnet.ops.jax": "jax",
    "xpnet.sklearn": "sklearn",
    "xpnet.export.graph": "onnx",
    "xpnet.export.heads": "onnx",
    "xpnet.export.layers": "onnx",
}
LIBRARIES = ("NumPy", "CuPy", "PyTorch", "JAX", "array-api-strict")
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(xpnet.__path__, "xpnet.") if m.name != "xpnet.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_the_public_names_a_module_defines(name):
    needs = [lib for mod, lib in OPTIONAL.items() if name == mod or name.startswith(mod + ".")]
    for library in needs:
        pytest.importorskip(library, reason=f"{name} needs {library}")
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


def test_the_package_the_project_and_the_command_name_every_library():
    from xpnet.cli.parser import build_parser

    project = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    description = next(line for line in project.splitlines() if line.startswith("description"))
    for text in (xpnet.__doc__, description, build_parser().description):
        assert text is not None
        missing = [lib for lib in LIBRARIES if lib not in " ".join(text.split())]
        assert not missing, f"{missing} missing from {text!r}"
