"""One test, many backends: the `xp`, `backend` and `dtype` fixtures run a test on every array
library importable here (after scipy's and array-api-extra's conftest). A missing backend is
skipped with its reason. XPNET_BACKENDS=cupy,torch (names or case ids) narrows the set."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xpnet
import xpnet.data

# scikit-learn's array API dispatch (tests/test_sklearn.py) needs scipy's, switched on before
# scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True, scope="session")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reaches the internet or the real download cache: a connection off this
    machine fails the test (tests/test_download.py serves its files on 127.0.0.1), no proxy
    is used, and XPNET_DATA_DIR is a fresh folder."""
    connect = socket.create_connection

    def local_only(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in LOCAL_HOSTS:
            raise AssertionError(f"a test tried to connect to {address[0]}: tests stay offline")
        return connect(address, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "create_connection", local_only)
        for name in PROXIES:
            mp.delenv(name, raising=False)
        mp.setenv("XPNET_DATA_DIR", str(tmp_path_factory.mktemp("xpnet-data")))
        yield


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
    # JAX as users get it (x64 off: float32 only, int32 indices) and with x64 switched on for
    # the test (float64), the mode a user chooses with JAX_ENABLE_X64=1
    Case("jax", "jax", None, "float32"),
    Case("jax-f64", "jax", None, "float64"),
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
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    """The backend case; on JAX, x64 mode is on for the test when the case is float64 or the
    test is marked `float64` (it needs float64 on every backend, as gradcheck does), and off
    otherwise (float32 as JAX's users get it by default), then restored."""
    case = request.param
    if case.name != "jax":
        yield case
        return
    import jax

    before = jax.config.jax_enable_x64
    wanted = case.dtype == "float64" or request.node.get_closest_marker("float64") is not None
    jax.config.update("jax_enable_x64", wanted)
    try:
        yield case
    finally:
        jax.config.update("jax_enable_x64", before)


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 digits as an .npz file (the CLI splits it 240 train / 60 test), read by the CLI
    tests, never written."""
    digits = xpnet.data.load_digits()
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, X=digits.X[:300], y=digits.y[:300])
    return path


@pytest.fixture
def backend(case: Case) -> xpnet.Backend:
    return xpnet.get_backend(case.name, case.device)


@pytest.fixture
def xp(backend: xpnet.Backend) -> Any:
    return backend.xp


@pytest.fixture
def dtype(case: Case) -> str:
    return case.dtype
