"""xpnet.save / xpnet.load: exact round trips on every backend, exact resumption, atomic writes,
and a clear CheckpointError for every kind of bad file."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import xpnet
from xpnet.checkpoint import FILENAME

rng = np.random.default_rng(0)
X_SMALL = rng.random((96, 5))
Y_SMALL = rng.integers(0, 3, 96)


def trained(backend="numpy", dtype="float32", optimizer=None, epochs=2, device=None):
    """A small net after a few epochs, and its optimizer (with state)."""
    net = xpnet.MLP(
        [5, 7, 3], output="identity", backend=backend, device=device, dtype=dtype, seed=3
    )
    optimizer = optimizer or xpnet.Adam(lr=0.01)
    xpnet.fit(
        net,
        X_SMALL,
        Y_SMALL,
        loss=xpnet.SoftmaxCrossEntropyLoss(),
        optimizer=optimizer,
        epochs=epochs,
        batch_size=16,
        seed=5,
    )
    return net, optimizer


def host(state):
    return {k: xpnet.to_numpy(v) for k, v in state.items() if k != "t"}


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_round_trip_on_every_backend(case, tmp_path):
    net, opt = trained(case.name, case.dtype, device=case.device)
    path = xpnet.save(
        net,
        tmp_path / "run",
        {"note": "hi"},
        optimizer=opt,
        epoch=2,
        seed=5,
        history=[{"epoch": 1, "loss": 1.5}, {"epoch": 2, "loss": float("nan")}],
    )
    assert path == tmp_path / "run" / FILENAME
    ck = xpnet.load_checkpoint(tmp_path / "run", backend=case.name, device=case.device)
    assert ck.net.config() == net.config()
    assert ck.net.backend.name == case.name and str(ck.net.backend.device) == str(
        net.backend.device
    )
    assert_same_arrays(host(ck.net.state_dict()), host(net.state_dict()))
    assert type(ck.optimizer) is xpnet.Adam and ck.optimizer.t == opt.t == 12
    assert_same_arrays(host(ck.optimizer.state_dict()), host(opt.state_dict()))
    assert (ck.epoch, ck.seed, ck.metadata) == (2, 5, {"note": "hi"})
    assert ck.history[0] == {"epoch": 1, "loss": 1.5} and np.isnan(ck.history[1]["loss"])
    # a net saved from here loads anywhere: numpy, by the file's own path
    plain = xpnet.load(path, backend="numpy")
    assert_same_arrays(host(plain.state_dict()), host(net.state_dict()))


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizer_hyperparameters_survive(name, tmp_path):
    opt = xpnet.optim.OPTIMIZERS[name](lr=0.03)
    net, opt = trained(optimizer=opt, epochs=1)
    xpnet.save(net, tmp_path / "a.safetensors", optimizer=opt)
    loaded = xpnet.load_checkpoint(tmp_path / "a.safetensors", backend="numpy").optimizer
    assert repr(loaded) == repr(opt) and loaded.t == opt.t
    assert_same_arrays(host(loaded.state_dict()), host(opt.state_dict()))


def test_resume_is_bit_identical(tmp_path):
    """4 epochs straight == 2 epochs, save, load, 2 more (the shuffling of epoch e depends only
    on (seed, e); the Adam moments and step count come back exactly)."""
    straight, _ = trained(epochs=4)
    net, opt = trained(epochs=2)
    xpnet.save(net, tmp_path, optimizer=opt, epoch=2, seed=5)
    ck = xpnet.load_checkpoint(tmp_path, backend="numpy")
    xpnet.fit(
        ck.net,
        X_SMALL,
        Y_SMALL,
        loss=xpnet.SoftmaxCrossEntropyLoss(),
        optimizer=ck.optimizer,
        epochs=4,
        batch_size=16,
        seed=ck.seed,
        initial_epoch=ck.epoch,
    )
    assert_same_arrays(host(ck.net.state_dict()), host(straight.state_dict()))
    # ... and without the optimizer state it would not be: the check above can fail
    fresh = xpnet.load(tmp_path, backend="numpy")
    xpnet.fit(
        fresh,
        X_SMALL,
        Y_SMALL,
        loss=xpnet.SoftmaxCrossEntropyLoss(),
        optimizer=xpnet.Adam(lr=0.01),
        epochs=4,
        batch_size=16,
        seed=5,
        initial_epoch=2,
    )
    assert not np.array_equal(
        xpnet.to_numpy(fresh.state_dict()["W1"]), xpnet.to_numpy(straight.state_dict()["W1"])
    )


@pytest.mark.parametrize("crash_in", ["write", "fsync", "replace"])
def test_a_crash_mid_save_leaves_the_old_checkpoint(crash_in, tmp_path, monkeypatch):
    old, _ = trained(epochs=1)
    new, _ = trained(epochs=3)
    xpnet.save(old, tmp_path)

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    if crash_in == "write":  # the process dies with the temporary file half written
        monkeypatch.setattr("xpnet.checkpoint.os.fdopen", _half_writer(crash))
    else:
        monkeypatch.setattr(f"xpnet.checkpoint.os.{crash_in}", crash)
    with pytest.raises(OSError, match="simulated crash"):
        xpnet.save(new, tmp_path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [FILENAME]  # no temporary file left behind
    back = xpnet.load(tmp_path, backend="numpy")
    assert_same_arrays(host(back.state_dict()), host(old.state_dict()))
    xpnet.save(new, tmp_path)  # and the next save succeeds
    assert_same_arrays(host(xpnet.load(tmp_path, "numpy").state_dict()), host(new.state_dict()))


def _half_writer(crash):
    """os.fdopen whose file writes a few bytes, then 'dies'."""
    real = os.fdopen

    def fdopen(fd, mode):
        f = real(fd, mode)

        class Half:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                f.write(data[:4])
                f.flush()
                crash()

        return Half()

    return fdopen


# -- bad files --------------------------------------------------------------------------------
def _saved(tmp_path) -> Path:
    net, opt = trained(epochs=1)
    return xpnet.save(net, tmp_path / "ck.safetensors", optimizer=opt, epoch=1)


def _rewrite_header(path: Path, edit) -> None:
    """Change the xpnet JSON in a saved file, keeping the tensors (and their digest) as they are."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    xp_header = json.loads(header["__metadata__"]["xpnet"])
    edit(xp_header)
    header["__metadata__"]["xpnet"] = json.dumps(xp_header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n :])


def test_the_header_rewriter_keeps_a_valid_file(tmp_path):
    path = _saved(tmp_path)
    _rewrite_header(path, lambda h: h["metadata"].update(edited=True))
    assert xpnet.load_checkpoint(path, backend="numpy").metadata == {"edited": True}


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _flip_a_weight_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _foreign_safetensors(path):
    path.write_bytes(safetensors.numpy.save({"weight": np.zeros((2, 2), np.float32)}))


def _wrong_shapes(path):
    _rewrite_header(path, lambda h: h["config"].update(sizes=[5, 8, 3]))


def _wrong_dtype(path):
    _rewrite_header(path, lambda h: h["config"].update(dtype="float64"))


def _newer_version(path):
    _rewrite_header(path, lambda h: h.update(version=99))


def _text(path):
    path.write_text("this is not a checkpoint\n")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "corrupt or truncated"),
        (_flip_a_weight_byte, "do not match the stored SHA-256"),
        (_foreign_safetensors, "not an xpnet checkpoint"),
        (_text, "not a readable safetensors file"),
        (_wrong_shapes, r"has shape \(5, 7\) but the net needs \(5, 8\)"),
        (_wrong_dtype, r"tensor \w+ is float32 but the net is float64"),
        (_newer_version, "newer xpnet"),
    ],
)
def test_bad_files_raise_a_clear_error(damage, message, tmp_path):
    path = _saved(tmp_path)
    damage(path)
    with pytest.raises(xpnet.CheckpointError, match=message):
        xpnet.load(path, backend="numpy")


def test_missing_path(tmp_path):
    with pytest.raises(xpnet.CheckpointError, match=r"no such file or directory: .*nowhere"):
        xpnet.load(tmp_path / "nowhere")
    with pytest.raises(xpnet.CheckpointError, match=re.escape(str(tmp_path / FILENAME))):
        xpnet.load(tmp_path)  # a directory without a checkpoint


class _Trap:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["XPNET_TRAP"]),))


def test_never_unpickles(tmp_path, monkeypatch):
    trap = tmp_path / "unpickled"
    monkeypatch.setenv("XPNET_TRAP", str(trap))
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Trap()))
    with pytest.raises(xpnet.CheckpointError):
        xpnet.load(path)
    assert not trap.exists()


def test_metadata_must_be_json(tmp_path):
    net, _ = trained(epochs=1)
    with pytest.raises(xpnet.CheckpointError, match="JSON-serializable"):
        xpnet.save(net, tmp_path, {"bad": object()})
    assert not list(tmp_path.iterdir())
