"""xpnet.save / xpnet.load: exact round trips on every backend, exact resumption, atomic writes,
and a clear CheckpointError for every kind of bad file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from helpers import rewrite_checkpoint as _rewrite

import xpnet
import xpnet.files
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


class Killed(BaseException):
    """What a kill looks like from inside: not an Exception, so nothing may swallow it."""


# Every call that files.write_atomic makes on the way, and the n-th call of it that dies:
# the first write (nothing written), a write after half the data (os.write wrote only part of
# it), the fsync of the file, the rename, and the fsync of the directory after the rename.
CRASH_POINTS = {
    "first write": ("write", 1),
    "second write, half written": ("write", 2),
    "fsync": ("fsync", 1),
    "close": ("close", 1),
    "rename": ("replace", 1),
    "directory fsync": ("fsync", 2),
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
@pytest.mark.parametrize("error", [Killed, OSError])
def test_a_save_killed_at_any_point_leaves_a_whole_checkpoint(point, error, tmp_path, monkeypatch):
    """A save killed anywhere between the first write and the last fsync leaves the previous
    checkpoint loadable (or, once the rename is done, the new one: never a mix), no stray
    temporary file, and the next save works."""
    old, _ = trained(epochs=1)
    new, _ = trained(epochs=3)
    xpnet.save(old, tmp_path)
    name, nth = CRASH_POINTS[point]
    real = getattr(os, name)
    calls = []

    def dying(*args, **kwargs):
        calls.append(args)
        if len(calls) == nth:
            raise error("simulated kill")
        if name == "write":  # write half of what was asked, so a second write is needed
            fd, data = args
            return real(fd, bytes(data[: max(1, len(data) // 2)]))
        return real(*args, **kwargs)

    monkeypatch.setattr(f"xpnet.files.os.{name}", dying)
    with pytest.raises(error, match="simulated kill"):
        xpnet.save(new, tmp_path)
    monkeypatch.undo()
    assert len(calls) == nth  # the kill happened where this case says
    assert os.listdir(tmp_path) == [FILENAME]  # no temporary file left behind
    back = host(xpnet.load(tmp_path, backend="numpy").state_dict())
    renamed = point == "directory fsync"
    assert_same_arrays(back, host((new if renamed else old).state_dict()))
    xpnet.save(new, tmp_path)  # and the next save succeeds
    assert_same_arrays(host(xpnet.load(tmp_path, "numpy").state_dict()), host(new.state_dict()))


def test_write_atomic_names_the_target_not_the_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        xpnet.files.write_atomic(tmp_path / "missing_dir" / "out.npz", b"x")
    assert info.value.filename == str(tmp_path / "missing_dir" / "out.npz")
    assert ".tmp" not in str(info.value)


# -- bad files --------------------------------------------------------------------------------
def _saved(tmp_path) -> Path:
    net, opt = trained(epochs=1)
    return xpnet.save(net, tmp_path / "ck.safetensors", optimizer=opt, epoch=1)


def test_the_rewriter_keeps_a_valid_file(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda h: h["metadata"].update(edited=True))
    assert xpnet.load_checkpoint(path, backend="numpy").metadata == {"edited": True}


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


def _flip_a_weight_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _tamper_with_the_header(path):
    _rewrite(path, lambda h: h.update(epoch=7), sign=False)


def _foreign_safetensors(path):
    path.write_bytes(safetensors.numpy.save({"weight": np.zeros((2, 2), np.float32)}))


def _with_bf16(outer: dict, data: bytes) -> bytes:
    """Safetensors bytes: the tensors described by `outer` over `data`, plus a bfloat16 one
    (a dtype NumPy has not, as in many foreign files)."""
    outer["extra"] = {"dtype": "BF16", "shape": [2], "data_offsets": [len(data), len(data) + 4]}
    raw = json.dumps(outer).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + data + bytes(4)


def _foreign_bf16(path):
    path.write_bytes(_with_bf16({}, b""))


def _bf16_in_a_checkpoint(path):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    path.write_bytes(_with_bf16(json.loads(data[8 : 8 + n]), data[8 + n :]))


def _wrong_shapes(path):
    _rewrite(path, lambda h: h["config"].update(sizes=[5, 8, 3]))


def _wrong_dtype(path):
    _rewrite(path, lambda h: h["config"].update(dtype="float64"))


def _unknown_activation(path):
    _rewrite(path, lambda h: h["config"].update(hidden="no_such_activation"))


def _newer_version(path):
    _rewrite(path, lambda h: h.update(version=99))


def _version_as_text(path):
    _rewrite(path, lambda h: h.update(version="2"))


def _epoch_as_text(path):
    _rewrite(path, lambda h: h.update(epoch="x"))


def _fractional_step_count(path):
    _rewrite(path, lambda h: h["optimizer"].update(t=1.5))


def _moment_of_the_wrong_shape(path):
    _rewrite(path, tensors_edit=lambda t: t.update({"optimizer/m.W1": np.zeros((1, 1), "f4")}))


def _moment_of_no_parameter(path):
    _rewrite(path, tensors_edit=lambda t: t.update({"optimizer/m.W9": np.zeros((5, 7), "f4")}))


def _moment_missing(path):
    _rewrite(path, tensors_edit=lambda t: t.pop("optimizer/v.b2"))


def _unknown_slot(path):
    _rewrite(path, tensors_edit=lambda t: t.update({"optimizer/z.W1": t["optimizer/m.W1"]}))


def _text(path):
    path.write_text("this is not a checkpoint\n")


def _classes_of_mixed_types(path):
    _rewrite(path, lambda h: h.update(classes=[0, "cat", 2]))


def _classes_too_few(path):
    _rewrite(path, lambda h: h.update(classes=["cat", "dog"]))


def _classes_repeated(path):
    _rewrite(path, lambda h: h.update(classes=["cat", "dog", "cat"]))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, "corrupt or truncated"),
        (_flip_a_weight_byte, "do not match the stored SHA-256"),
        (_tamper_with_the_header, "do not match the stored SHA-256"),
        (_foreign_safetensors, "not an xpnet checkpoint"),
        (_foreign_bf16, "not an xpnet checkpoint"),
        (_bf16_in_a_checkpoint, "cannot load .*BF16"),
        (_text, "not a readable safetensors file"),
        (_wrong_shapes, r"has shape \(5, 7\) but the net needs \(5, 8\)"),
        (_wrong_dtype, r"tensor \w+ is float32 but the net is float64"),
        (_unknown_activation, "unknown hidden activation 'no_such_activation'"),
        (_newer_version, "newer xpnet"),
        (_version_as_text, "unknown checkpoint format version '2'"),
        (_epoch_as_text, "its epoch 'x' is not a whole number"),
        (_fractional_step_count, "optimizer step count 1.5 is not a whole number"),
        (
            _moment_of_the_wrong_shape,
            r"m.W1 is float32 \(1, 1\) but parameter W1 is float32 \(5, 7\)",
        ),
        (_moment_of_no_parameter, "optimizer/m.W9 belongs to no parameter"),
        (_moment_missing, "optimizer state 'v' lacks parameters b2"),
        (_unknown_slot, r"Adam keeps state \['m', 'v'\], not \['z.W1'\]"),
        (_classes_of_mixed_types, r"classes \[0, 'cat', 2\] are not a list of whole numbers or"),
        (_classes_too_few, r"2 classes \(cat, dog\) for a net whose outputs stand for 3"),
        (_classes_repeated, "classes must be a non-empty 1-D list of distinct labels"),
    ],
)
def test_bad_files_raise_a_clear_error(damage, message, tmp_path):
    path = _saved(tmp_path)
    damage(path)
    with pytest.raises(xpnet.CheckpointError, match=message) as caught:
        xpnet.load(path, backend="numpy")
    assert str(path) in str(caught.value)


def test_an_error_while_building_keeps_its_cause(tmp_path):
    path = _saved(tmp_path)
    _unknown_activation(path)
    with pytest.raises(xpnet.CheckpointError, match=r"^cannot load .*ck\.safetensors") as caught:
        xpnet.load(path, backend="numpy")
    assert type(caught.value.__cause__) is ValueError


@pytest.mark.parametrize(
    "classes",
    [np.array(["cat", "dog", "zebra"]), np.array([-1, 5, 100]), ["b", "a", "c"], (0, 1, 3)],
)
def test_classes_round_trip(classes, tmp_path):
    """Text stays text and integers stay int64 (NumPy's str_ and int64 saved as JSON's)."""
    net, _ = trained(epochs=1)
    path = xpnet.save(net, tmp_path / "ck.safetensors", classes=classes)
    back = xpnet.load_checkpoint(path, backend="numpy").classes
    assert back.tolist() == list(np.asarray(classes).tolist())
    assert back.dtype.kind == ("U" if isinstance(back.tolist()[0], str) else "i")
    assert back.dtype.kind == "U" or back.dtype == np.int64


def test_without_classes_the_codes_are_the_labels(tmp_path):
    def classes(net, path, **kwargs):
        return xpnet.load_checkpoint(xpnet.save(net, path, **kwargs), "numpy").classes.tolist()

    net, _ = trained(epochs=1)
    assert classes(net, tmp_path / "a") == [0, 1, 2]
    one = xpnet.MLP([2, 1])  # a single sigmoid output stands for classes 0 and 1
    assert classes(one, tmp_path / "b") == [0, 1]
    assert classes(one, tmp_path / "c", classes=["no", "yes"]) == ["no", "yes"]


def test_saving_classes_that_do_not_fit_the_net_is_refused(tmp_path):
    net, _ = trained(epochs=1)
    with pytest.raises(xpnet.CheckpointError, match=r"cannot save the classes: 2 classes \(a, b\)"):
        xpnet.save(net, tmp_path / "x", classes=["a", "b"])
    with pytest.raises(xpnet.CheckpointError, match="got dtype complex128"):
        xpnet.save(net, tmp_path / "x", classes=np.array([1j, 2j, 3j]))
    assert not (tmp_path / "x").exists()


def _tensor_digest(tensors):
    """Version 1's SHA-256, of the tensors alone, written out here independently."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = tensors[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode() + a.tobytes())
    return h.hexdigest()


def test_version_1_files_still_load(tmp_path):
    path = _saved(tmp_path)
    weights = host(xpnet.load(path, backend="numpy").state_dict())

    def as_version_1(h):
        h["version"] = 1
        h["sha256"] = _tensor_digest(safetensors.numpy.load_file(path))

    _rewrite(path, as_version_1, sign=False)
    assert_same_arrays(host(xpnet.load(path, backend="numpy").state_dict()), weights)


def test_missing_path(tmp_path):
    with pytest.raises(xpnet.CheckpointError, match=r"no such file or directory: .*nowhere"):
        xpnet.load(tmp_path / "nowhere")
    with pytest.raises(xpnet.CheckpointError, match=re.escape(str(tmp_path / FILENAME))):
        xpnet.load(tmp_path)  # a directory without a checkpoint


class _Trap:
    """Unpickling this touches `marker`: proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _torch():
    return pytest.importorskip("torch")


def _save_object_array(path, trap):
    with path.open("wb") as f:
        np.save(f, np.array([trap], dtype=object), allow_pickle=True)


def _torch_load(path):
    with path.open("rb") as f:  # a file object: torch.load would open a *.safetensors name
        return _torch().load(f, weights_only=False)  # with safetensors


# how a file can carry a pickle, and the careless loader that would run it
CARRIERS = {
    "pickle": (
        lambda path, trap: path.write_bytes(pickle.dumps(trap)),
        lambda path: pickle.loads(path.read_bytes()),
    ),
    "numpy object array": (_save_object_array, lambda path: np.load(path, allow_pickle=True)),
    "torch.save": (lambda path, trap: _torch().save({"W1": trap}, path), _torch_load),
}


@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_never_unpickles(carrier, tmp_path):
    write, careless_load = CARRIERS[carrier]
    marker = tmp_path / "code-ran"
    path = tmp_path / "run" / FILENAME
    path.parent.mkdir()
    write(path, _Trap(marker))
    careless_load(path)  # the trap is armed: a loader that unpickles runs its code
    assert marker.exists()
    marker.unlink()
    refusal = "not an xpnet checkpoint|not a readable safetensors file"  # known kinds named
    with pytest.raises(xpnet.CheckpointError, match=refusal):
        xpnet.load(path.parent, backend="numpy")
    assert not marker.exists()


# -- saving ------------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_file_mode_follows_the_umask(umask, tmp_path):
    net = xpnet.MLP([2, 3, 1])
    old = os.umask(umask)
    try:
        path = xpnet.save(net, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600


def test_numpy_numbers_are_saved_as_numbers(tmp_path):
    net = xpnet.MLP([2, 3, 1])
    history = [{"epoch": np.int64(1), "loss": np.float32(0.5)}]
    xpnet.save(net, tmp_path, epoch=np.int64(1), seed=np.int64(3), history=history)
    ck = xpnet.load_checkpoint(tmp_path, backend="numpy")
    assert (ck.epoch, ck.seed, ck.history) == (1, 3, [{"epoch": 1, "loss": 0.5}])
    assert type(ck.seed) is int and type(ck.history[0]["loss"]) is float


def test_metadata_must_be_json_and_the_error_names_the_key(tmp_path):
    net = xpnet.MLP([2, 3, 1])
    with pytest.raises(xpnet.CheckpointError, match=r"metadata\['bad'\] is not JSON-serializ"):
        xpnet.save(net, tmp_path, {"fine": [1, 2.5, None], "bad": {"x": np.float32(1)}})
    with pytest.raises(xpnet.CheckpointError, match=r"metadata\[1\] is not JSON-serializable"):
        xpnet.save(net, tmp_path, {1: "a non-str key"})
    assert not list(tmp_path.iterdir())


def test_a_misspelt_keyword_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'epochs'"):
        xpnet.save(xpnet.MLP([2, 3, 1]), tmp_path, epochs=3)  # type: ignore[call-arg]
    assert not list(tmp_path.iterdir())
