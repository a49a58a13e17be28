"""Library cases of issue 8 outside the core: dtype objects of every library, BCE targets,
save paths that are no checkpoint, and files that are no checkpoint."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import xpnet
from xpnet.backend import BackendError, dtype_name


def _library_dtypes():
    cases = [("float32", "float32"), ("float64", "float64")]
    cases += [
        (np.float32, "float32"),
        (np.dtype("float64"), "float64"),
        (np.dtype("<f4"), "float32"),
    ]
    try:
        import torch

        cases += [(torch.float32, "float32"), (torch.float64, "float64")]
    except ImportError:
        pass
    try:
        import array_api_strict as strict

        cases += [(strict.float32, "float32"), (strict.float64, "float64")]
    except ImportError:
        pass
    return cases


@pytest.mark.parametrize(("dtype", "name"), _library_dtypes(), ids=repr)
def test_dtype_name_takes_every_librarys_float_dtypes(dtype, name):
    assert dtype_name(dtype) == name


@pytest.mark.parametrize(
    "dtype", ["float16", "f4", "int32", float, np.int64, np.dtype(bool), None, 3]
)
def test_dtype_name_refuses_the_rest_naming_it(dtype):
    with pytest.raises(BackendError, match=r"unsupported dtype .*use 'float32' or 'float64'"):
        dtype_name(dtype)


@pytest.mark.float64
def test_backend_dtype_takes_dtype_objects(backend):
    assert backend.dtype(np.float64) == backend.xp.float64
    assert backend.dtype(np.dtype("float32")) == backend.xp.float32


def test_save_refuses_a_path_that_is_neither_file_nor_directory(tmp_path):
    net = xpnet.MLP([2, 3, 1])
    with pytest.raises(xpnet.CheckpointError, match=r"give .*model\.safetensors"):
        xpnet.save(net, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []  # no directory named model.pt
    (tmp_path / "run.v1").mkdir()  # a directory with a dot in its name, made first, is fine
    xpnet.save(net, tmp_path / "run.v1")
    xpnet.save(net, tmp_path / "plain")
    xpnet.save(net, tmp_path / "net.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors", "plain", "run.v1"]
    for path in ("run.v1", "plain", "net.safetensors"):
        assert xpnet.load(tmp_path / path, backend="numpy").sizes == [2, 3, 1]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (pickle.dumps({"W1": np.zeros(2)}), "it looks like a pickle"),
        (b"PK\x03\x04rest", "zip archive"),
        (b"", "an empty file"),
        (b"hello world, this is text", "not a safetensors file"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named_so(content, said, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(xpnet.CheckpointError, match="is not an xpnet checkpoint") as info:
        xpnet.load(path)
    assert said in str(info.value)


@pytest.mark.float64
def test_backward_refuses_a_gradient_of_another_dtype_as_forward_refuses_inputs(backend):
    """Issue 21, item 9: a float64 dL/dY on a float32 net would give float64 gradients."""
    net = xpnet.MLP([3, 4, 2], backend=backend, dtype="float32")
    xp = backend.xp
    net.forward(xpnet.asarray(np.ones((5, 3)), like=net))
    gY = xp.ones((5, 2), dtype=xp.float64, device=backend.device)
    with pytest.raises(ValueError, match=r"gY has dtype .*float64.* but the net is float32"):
        net.backward(gY)


def test_a_net_too_big_for_the_memory_is_refused_before_allocating(monkeypatch):
    """Issue 21, item 25: MLP([64, 10**9, 10]) raised NumPy's MemoryError from the draw."""
    with pytest.raises(MemoryError, match=r"a net of 7.5e\+10 parameters needs about .* GiB"):
        xpnet.MLP([64, 10**9, 10])
    monkeypatch.setattr("xpnet.memory.host_available_memory", lambda: 2**20)
    with pytest.raises(MemoryError, match=r"but the host has 0\.000977 GiB free; use fewer"):
        xpnet.MLP([64, 1000, 10])
    monkeypatch.setattr("xpnet.memory.host_available_memory", lambda: None)  # unknown: go on
    assert xpnet.MLP([64, 1000, 10]).n_out == 10
