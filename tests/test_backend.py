"""The backend adapter: names, availability, the explicit moves and the mismatch errors."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import xpnet
from xpnet.backend import BackendError


def test_available_backends_names_every_backend_with_a_status():
    status = xpnet.available_backends()
    assert set(status) == {"numpy", "cupy", "torch", "array_api_strict", "jax"}
    assert status["numpy"] == "ok"
    for name, text in status.items():
        assert text == "ok" or text.startswith(("not installed", "no CUDA device")), (name, text)


def test_auto_is_cupy_exactly_when_cupy_is_usable():
    expected = "cupy" if xpnet.available_backends()["cupy"] == "ok" else "numpy"
    assert xpnet.get_backend("auto").name == expected


def test_unknown_backend_names_the_choices():
    with pytest.raises(BackendError, match=r"unknown backend 'nope'.*numpy, cupy, torch"):
        xpnet.get_backend("nope")


def test_unusable_backend_says_why():
    status = xpnet.available_backends()["cupy"]
    if status == "ok":
        pytest.skip("cupy is usable here")
    with pytest.raises(BackendError, match="backend 'cupy' is not usable here"):
        xpnet.get_backend("cupy")


def test_namespaces_resolve_to_their_backend():
    assert xpnet.get_backend(np).name == "numpy"
    assert xpnet.get_backend(array_api_compat.numpy).name == "numpy"
    backend = xpnet.get_backend("numpy")
    assert xpnet.get_backend(backend) is backend


def test_numpy_refuses_a_gpu_device():
    with pytest.raises(BackendError, match="unknown device 'cuda:0' for backend 'numpy'"):
        xpnet.get_backend("numpy", "cuda:0")


def test_asarray_and_to_numpy_round_trip(backend, dtype):
    host = np.linspace(-3, 3, 12).reshape(3, 4)
    a = xpnet.asarray(host, like=backend, dtype=dtype)
    assert str(array_api_compat.device(a)) == str(backend.device)
    assert a.dtype == getattr(backend.xp, dtype)
    back = xpnet.to_numpy(a)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host.astype(dtype))


def test_asarray_casts_integers_and_booleans_to_the_float_dtype(backend, dtype):
    ints = xpnet.asarray(np.array([[1, 2], [3, 4]], dtype=np.int64), like=backend, dtype=dtype)
    bools = xpnet.asarray([[True, False]], like=backend, dtype=dtype)
    assert ints.dtype == bools.dtype == getattr(backend.xp, dtype)
    np.testing.assert_array_equal(xpnet.to_numpy(ints), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(xpnet.to_numpy(bools), [[1.0, 0.0]])


def test_asarray_refuses_strings():
    with pytest.raises(BackendError, match="cannot convert data of dtype <U1"):
        xpnet.asarray(np.array(["a"]), like="numpy")


def test_backend_of_mixed_libraries_names_both_and_the_fix():
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError) as err:
        xpnet.backend_of(np.zeros(2), torch.zeros(2))
    text = str(err.value)
    assert "numpy on cpu" in text and "torch on cpu" in text
    assert "xpnet.asarray(a, like=net)" in text


def test_backend_of_two_devices_names_both():
    xps = pytest.importorskip("array_api_strict")
    a = xps.asarray([1.0], device=xps.Device("CPU_DEVICE"))
    b = xps.asarray([1.0], device=xps.Device("device1"))
    with pytest.raises(BackendError, match=r"CPU_DEVICE.*and.*device1"):
        xpnet.backend_of(a, b)


def test_backend_of_one_place(backend, dtype):
    a = xpnet.asarray([1.0, 2.0], like=backend, dtype=dtype)
    found = xpnet.backend_of(a, a)
    assert found.name == backend.name
    assert str(found.device) == str(backend.device)


def test_asarray_moves_between_strict_devices():
    xps = pytest.importorskip("array_api_strict")
    net = xpnet.MLP([2, 1], backend="array_api_strict", device="device1")
    a = xps.asarray([[1.0, 2.0]], device=xps.Device("CPU_DEVICE"))
    moved = xpnet.asarray(a, like=net)
    assert moved.device == xps.Device("device1")
    assert moved.dtype == xps.float32


@pytest.mark.parametrize(("spec", "index"), [(1, 1), ("1", 1), ("cuda", 0), ("cuda:2", 2)])
def test_gpu_numbers_are_read_from_every_spelling(spec, index):
    from xpnet.backend import _gpu_index

    assert _gpu_index(spec) == index


@pytest.mark.parametrize("spec", ["cpu", "cuda:x", "gpu1"])
def test_gpu_spellings_that_name_no_gpu_are_refused(spec):
    from xpnet.backend import _gpu_index

    with pytest.raises(ValueError, match="give a GPU number"):
        _gpu_index(spec)


def test_torch_cuda_without_a_gpu_says_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(BackendError, match=r"unknown device 'cuda'.*torch has no CUDA device"):
        xpnet.get_backend("torch", "cuda")


def test_torch_cpu_device_spellings():
    torch = pytest.importorskip("torch")
    assert xpnet.get_backend("torch", "cpu").device == torch.device("cpu")
    assert xpnet.get_backend("torch", torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "device", "expected"),
    [
        ("cupy", None, 1),  # no device named: the rank's own GPU
        ("cupy", 0, 0),  # a device the user named is kept
        ("torch", "cuda", "cuda:1"),
        ("torch", "cuda:0", "cuda:0"),
        ("torch", None, None),  # torch's default is the CPU: every rank shares it
        ("numpy", None, None),
    ],
)
def test_a_rank_takes_the_gpu_of_its_local_rank_unless_one_is_named(name, device, expected):
    assert xpnet.backend.rank_device(name, device, local_rank=1) == expected
    assert xpnet.backend.rank_device(name, device, local_rank=None) == device  # alone


def test_every_library_has_one_record_and_only_those_are_backends():
    from xpnet.backend import LIBRARIES

    assert tuple(LIBRARIES) == xpnet.backend.BACKEND_NAMES
    assert all(name == library.name for name, library in LIBRARIES.items())
    assert [name for name, lib in LIBRARIES.items() if lib.host_memory] == [
        "numpy",
        "array_api_strict",
    ]


def test_a_backend_knows_its_library():
    backend = xpnet.get_backend("numpy")
    assert backend.library is xpnet.backend.LIBRARIES["numpy"]
    assert xpnet.backend.on_host(backend) and not backend.library.nccl


def test_to_numpy_copies_from_every_backend(backend):
    a = backend.from_host(np.arange(3.0, dtype=np.float32))
    host = xpnet.to_numpy(a)
    assert type(host) is np.ndarray and host.tolist() == [0.0, 1.0, 2.0]
