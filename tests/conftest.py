"""One test, many backends: the `xp`, `backend` and `dtype` fixtures run a test on every array
library importable here (after scipy's and array-api-extra's conftest). A missing backend is
skipped with its reason. XPNET_BACKENDS=cupy,torch (names or case ids) narrows the set."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest

import xpnet

# scikit-learn's array API dispatch (tests/test_sklearn.py) needs scipy's, switched on before
# scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


@dataclasses.dataclass(frozen=True)
class Case:
    """One backend to test on: library name, device spec, and the dtype tests default to."""

    id: str
    name: str
    device: Any
    dtype: str


def _torch_cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    return None if torch.cuda.is_available() else "torch has no CUDA device"


CASES = [
    Case("numpy", "numpy", None, "float64"),
    Case("strict-cpu", "array_api_strict", "CPU_DEVICE", "float64"),
    Case("strict-device1", "array_api_strict", "device1", "float64"),
    Case("strict-device2", "array_api_strict", "device2", "float32"),
    Case("torch-cpu-f32", "torch", "cpu", "float32"),
    Case("torch-cpu-f64", "torch", "cpu", "float64"),
    Case("torch-cuda", "torch", "cuda", "float32"),
    Case("cupy", "cupy", None, "float32"),
    Case("cupy-f64", "cupy", None, "float64"),
]


def _skip_reason(case: Case) -> str | None:
    selected = os.environ.get("XPNET_BACKENDS")
    if selected and not {case.id, case.name} & set(selected.split(",")):
        return f"not in XPNET_BACKENDS={selected}"
    status = xpnet.available_backends()[case.name]
    if status != "ok":
        return f"{case.name}: {status}"
    if case.id == "torch-cuda":
        return _torch_cuda_reason()
    return None


def _params() -> list[Any]:
    out = []
    for case in CASES:
        reason = _skip_reason(case)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.fixture(params=_params())
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def backend(case: Case) -> xpnet.Backend:
    return xpnet.get_backend(case.name, case.device)


@pytest.fixture
def xp(backend: xpnet.Backend) -> Any:
    return backend.xp


@pytest.fixture
def dtype(case: Case) -> str:
    return case.dtype
