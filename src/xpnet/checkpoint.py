"""Checkpoints: a net's weights, architecture and training state in one safetensors file.

The file holds the parameters (W1, b1, ...) and the optimizer's arrays ("optimizer/m.W1", ...)
as tensors; everything else (the MLP config, the optimizer's `config()` (name,
hyperparameters, learning-rate schedule and its state) and step count, the epoch, the
shuffling seed, the history, the class labels the outputs stand for, the precision policy
with its loss scale and the caller's metadata) is JSON in the safetensors header, with a
SHA-256 over that JSON and the tensors.
Loading parses JSON and raw arrays only, never pickles, and turns anything wrong in a file
into a CheckpointError naming it. Saving writes a temporary file in the same directory, fsyncs
it and renames it over the old one, so a process killed mid-save leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import safetensors.numpy
from numpy.typing import ArrayLike
from safetensors import SafetensorError

from .backend import asarray, get_backend, to_numpy
from .files import write_atomic
from .labels import class_array, describe_classes
from .layers.sequence import parameter_shapes, statistic_shapes
from .model import config_layers, net_from_config
from .optim import Optimizer, optimizer_from_config
from .precision_state import precision_state, restore_precision
from .sequential import Sequential

if TYPE_CHECKING:  # typing.Unpack is Python 3.11's; annotations are not evaluated
    from typing import Unpack

__all__ = [
    "FILENAME",
    "FORMAT",
    "SUFFIX",
    "VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointFile",
    "Contents",
    "checkpoint_path",
    "encode",
    "load",
    "load_checkpoint",
    "read_checkpoint",
    "save",
]

FORMAT = "xpnet-checkpoint"
VERSION = 2  # 2: the SHA-256 covers the header JSON and the tensors; 1: the tensors only
FILENAME = "checkpoint.safetensors"
SUFFIX = ".safetensors"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit: corrupt, truncated, foreign, mismatched."""


@dataclasses.dataclass
class Checkpoint:
    """What `load_checkpoint` returns: the net, the optimizer with its state (None if none was
    saved), the number of epochs trained, the shuffling seed, the history records, the
    caller's metadata and `classes`: the label each class code (each output's argmax) stands
    for, int64 or str, as saved (0..n-1 for a file saved without them)."""

    net: Sequential
    optimizer: Optimizer | None
    epoch: int
    seed: int | None
    history: list[dict[str, float]]
    metadata: dict[str, Any]
    path: Path
    classes: np.ndarray


@dataclasses.dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint file read and verified (format, version, SHA-256) but not yet built into a
    net, so that its metadata can choose where to build it before `load` does, from one read."""

    path: Path
    header: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def metadata(self) -> dict[str, Any]:
        """The caller's metadata, as given to `save`."""
        return dict(self.header.get("metadata", {}))

    def load(self, backend: Any = None, device: Any = None) -> Checkpoint:
        """The net (on `backend`, default "auto", and `device`), optimizer and training state."""
        place = get_backend(backend or "auto", device)  # the caller's choice, the caller's error
        with _interpreting(self.path):
            return _build(self, place)


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file `path` names: itself if it ends in .safetensors, else the run
    directory's checkpoint.safetensors."""
    path = Path(path)
    return path if path.suffix == SUFFIX else path / FILENAME


class Contents(TypedDict, total=False):
    """What a checkpoint holds besides the net and the caller's metadata, the keywords of `save`
    and `encode`, each optional: the `optimizer` whose state is saved for resuming (none), the
    `epoch` count trained (0), the shuffling `seed` (none), the `history` records (none), and
    the `classes` (ints or strings, such as a Dataset's) the net's class codes stand for, one
    per output (two for a single output)."""

    optimizer: Optimizer | None
    epoch: int
    seed: int | None
    history: Sequence[Mapping[str, float]]
    classes: ArrayLike | None


def save(
    net: Sequential,
    path: str | os.PathLike,
    metadata: Mapping[str, Any] | None = None,
    **contents: Unpack[Contents],
) -> Path:
    """Write `net` and the `Contents` given (for resuming: the optimizer's state, the epoch,
    the shuffling seed and the history) to `path`, a .safetensors file or a run directory
    (created if needed). `metadata` maps str keys to JSON values. Atomic: the old file survives
    a crash. Returns the file written."""
    target = checkpoint_path(path)
    if target != Path(path) and Path(path).suffix and not Path(path).is_dir():
        raise CheckpointError(
            f"cannot save to {Path(path)}: a checkpoint is a .safetensors file or a run "
            f"directory, and {target.parent.suffix!r} is neither; give "
            f"{Path(path).with_suffix(SUFFIX)} (or make the directory first to save into it)"
        )
    data = encode(net, metadata, **contents)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data)
    return target


def encode(
    net: Sequential, metadata: Mapping[str, Any] | None = None, **contents: Unpack[Contents]
) -> bytes:
    """The bytes `save` writes (the same arguments): a snapshot of the net, and optimizer,
    as they are now, to be written later (the CLI keeps the last epoch's, to save it on a
    signal)."""
    unknown = contents.keys() - Contents.__optional_keys__
    if unknown:
        raise TypeError(f"unexpected keyword argument {min(unknown)!r}")
    seed, classes = contents.get("seed"), contents.get("classes")
    tensors = {name: _host(p) for name, p in net.live_state().items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": net.config(),
        "epoch": int(contents.get("epoch", 0)),
        "seed": None if seed is None else int(seed),
        "history": [{k: _plain(v) for k, v in r.items()} for r in contents.get("history", ())],
        "metadata": _json_metadata(metadata or {}),
    }
    if net.precision.mixed:
        header["precision"] = precision_state(net)
    if classes is not None:
        try:
            header["classes"] = _checked_classes(classes, net).tolist()  # Python ints or strs
        except ValueError as err:
            raise CheckpointError(f"cannot save the classes: {err}") from err
    optimizer = contents.get("optimizer")
    if optimizer is not None:
        state = optimizer.state_dict()
        header["optimizer"] = {**optimizer.config(), "t": int(state["t"])}
        tensors.update({f"{OPTIMIZER_PREFIX}{k}": _host(v) for k, v in state.items() if k != "t"})
    header["sha256"] = _digest(tensors, header)
    text = {"xpnet": json.dumps(header, allow_nan=True)}
    return safetensors.numpy.save(tensors, metadata=text)


def load(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Sequential:
    """The net (MLP or Sequential) saved in `path` (a .safetensors file or a run directory),
    on `backend` (default "auto": cupy when a GPU is usable, else numpy) and `device`."""
    return load_checkpoint(path, backend, device).net


def load_checkpoint(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Checkpoint:
    """Everything `save` wrote: the net, optimizer, epoch, seed, history and metadata."""
    return read_checkpoint(path).load(backend, device)


def read_checkpoint(path: str | os.PathLike) -> CheckpointFile:
    """Read and verify the checkpoint in `path` without building the net: e.g. to learn from
    its metadata which backend a run used, then `.load(backend, device)` it there."""
    source = Path(path) if Path(path).is_file() else checkpoint_path(path)
    if not source.is_file():
        missing = source.parent if not source.parent.is_dir() else source
        raise CheckpointError(
            f"no such file or directory: {missing}; give a run directory (with {FILENAME}) "
            "or a .safetensors file written by xpnet.save"
        )
    data = source.read_bytes()
    foreign = source.suffix != SUFFIX or _foreign_kind(data) is not None  # a renamed pickle
    if foreign and not _looks_like_safetensors(data):
        raise CheckpointError(
            f"{source} is not an xpnet checkpoint ({_what_it_is(data)}); give a run directory "
            f"(with {FILENAME}) or a {SUFFIX} file written by xpnet.save"
        )
    with _interpreting(source):
        return CheckpointFile(source, *_parse(data, source))


def _looks_like_safetensors(data: bytes) -> bool:
    """Whether `data` starts as a safetensors file does: an 8-byte header length that fits
    the file, then "{" (a corrupt file of that shape is reported as corrupt, not as foreign)."""
    if len(data) < 10:
        return False
    size = int.from_bytes(data[:8], "little")
    return 2 <= size <= len(data) - 8 and data[8:9] == b"{"


def _foreign_kind(data: bytes) -> str | None:
    """What a file that other libraries write seems to be, by its first bytes (None: none)."""
    if data[:1] == b"\x80":  # pickle protocol 2+
        return "a pickle"
    if data[:2] == b"PK":  # torch.save, .npz
        return "a zip archive (torch.save or numpy.savez?)"
    return None


def _what_it_is(data: bytes) -> str:
    """A few words on what a file that is not a checkpoint seems to be, for error messages."""
    kind = _foreign_kind(data)
    if kind is not None:
        return f"it looks like {kind}, which xpnet never loads: unpickling can run code"
    return "not a safetensors file" if data else "an empty file"


# -- writing ----------------------------------------------------------------------------------
def _host(a: Any) -> np.ndarray:
    """A contiguous host copy of any backend's array (safetensors needs C order)."""
    return np.ascontiguousarray(to_numpy(a))


def _plain(value: Any) -> Any:
    """NumPy (or other) scalars as the Python numbers JSON can hold; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _json_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's metadata, each entry checked to be JSON so an error can name its key."""
    for key, value in metadata.items():
        try:
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint metadata[{key!r}] is not JSON-serializable ({err}); give str keys "
                "and plain values (str, int, float, bool, None, lists and dicts of them; "
                "e.g. int(x) or x.tolist() for NumPy values)"
            ) from err
    return dict(metadata)


def _digest(tensors: Mapping[str, np.ndarray], header: Mapping[str, Any] | None) -> str:
    """SHA-256 over the header's canonical JSON (all but the digest itself; None: version 1
    files, which hash the tensors only), then every tensor's name, dtype, shape and bytes in
    name order."""
    h = hashlib.sha256()
    if header is not None:
        rest = {k: v for k, v in header.items() if k != "sha256"}
        canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), allow_nan=True)
        h.update(canonical.encode())
    for name in sorted(tensors):
        a = tensors[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# -- reading ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _interpreting(source: Path) -> Iterator[None]:
    """The one place where anything that goes wrong while making sense of a file's contents
    becomes a CheckpointError naming the file (the original error kept as its __cause__)."""
    try:
        yield
    except (CheckpointError, MemoryError):
        raise
    except Exception as err:
        detail = err.args[0] if len(err.args) == 1 and isinstance(err.args[0], str) else err
        kind = "" if isinstance(err, ValueError) else f"{type(err).__name__}: "
        raise CheckpointError(
            f"cannot load {source}: {kind}{detail}; the file was edited or not written by "
            "xpnet.save, use an intact copy"
        ) from err


def _parse(data: bytes, source: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The xpnet header and the tensors of a file's bytes, checked against the stored digest."""
    header = _xpnet_header(data, source)
    version = header.get("version")
    if type(version) is not int or version < 1:
        raise CheckpointError(
            f"{source} has an unknown checkpoint format version {version!r}; "
            "it was not written by xpnet.save"
        )
    if version > VERSION:
        raise CheckpointError(
            f"{source} was written by a newer xpnet (format version {version}); "
            "upgrade xpnet to load it"
        )
    try:
        tensors = safetensors.numpy.load(data)
    except SafetensorError as err:
        raise CheckpointError(
            f"{source} is not a readable safetensors file (corrupt or truncated: {err}); "
            "use an intact copy"
        ) from err
    tensors = {k: np.array(v) for k, v in tensors.items()}  # writeable copies
    if header.get("sha256") != _digest(tensors, header if version >= 2 else None):
        raise CheckpointError(
            f"{source} is corrupt: its contents do not match the stored SHA-256; use an intact copy"
        )
    if not isinstance(header.get("metadata", {}), dict):
        raise ValueError("its metadata is not a JSON object")
    return header, tensors


def _xpnet_header(data: bytes, source: Path) -> dict[str, Any]:
    """The xpnet JSON in the safetensors header of `data` (read before any tensor, so a foreign
    file is named as such whatever its dtypes)."""
    try:
        outer = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        meta = outer.get("__metadata__") or {}
    except (ValueError, AttributeError) as err:
        raise CheckpointError(
            f"{source} is not a readable safetensors file (corrupt or truncated: {err}); "
            "use an intact copy"
        ) from err
    try:
        header = json.loads(meta["xpnet"])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("wrong format tag")
    except (KeyError, TypeError, ValueError) as err:
        size = int.from_bytes(data[:8], "little")
        if b"xpnet" in data[8 : 8 + size]:  # xpnet wrote it, and something has changed since
            raise CheckpointError(
                f"{source} is a corrupt xpnet checkpoint: its header no longer parses ({err}); "
                "use an intact copy"
            ) from err
        raise CheckpointError(
            f"{source} is a safetensors file but not an xpnet checkpoint (no xpnet header); "
            "load it with safetensors, then net.load_state_dict(...)"
        ) from err
    return header


def _build(stored: CheckpointFile, place: Any) -> Checkpoint:
    """The Checkpoint a verified file describes, with the net built on `place`; raises on any
    inconsistency (callers wrap it in `_interpreting`)."""
    header, tensors, source = stored.header, stored.tensors, stored.path
    params = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    _check_size(header["config"], params)
    net = net_from_config(header["config"], place)
    for name, value in params.items():
        if str(value.dtype) != net.dtype_name:
            raise CheckpointError(
                f"{source}: tensor {name} is {value.dtype} but the net is {net.dtype_name}; "
                "the file was not written by xpnet.save"
            )
    net.load_state_dict(params)
    restore_precision(net, header.get("precision"))
    seed = header.get("seed")
    if seed is not None and type(seed) is not int:
        raise ValueError(f"its seed {seed!r} is not a whole number")
    classes = header.get("classes")
    if classes is not None and not (
        isinstance(classes, list)
        and (all(type(c) is int for c in classes) or all(type(c) is str for c in classes))
    ):
        raise ValueError(f"its classes {classes!r} are not a list of whole numbers or of strings")
    return Checkpoint(
        net=net,
        optimizer=_optimizer(header.get("optimizer"), tensors, net),
        epoch=_count(header.get("epoch", 0), "epoch"),
        seed=seed,
        history=[dict(r) for r in header.get("history", [])],
        metadata=stored.metadata,
        path=source,
        classes=(
            np.arange(_n_classes(net), dtype=np.int64)
            if classes is None
            else _checked_classes(classes, net)
        ),
    )


def _n_classes(net: Sequential) -> int:
    """How many classes the net's outputs stand for: one each, two for a single output (its
    threshold at 0.5 tells class 1 from class 0)."""
    return 2 if net.n_out == 1 else net.n_out


def _checked_classes(classes: ArrayLike, net: Sequential) -> np.ndarray:
    """classes as `class_array` checks them, one for each class the net's outputs stand for."""
    values = class_array(classes)
    if values.size != _n_classes(net):
        raise ValueError(
            f"{values.size} classes ({describe_classes(values)}) for a net whose outputs stand "
            f"for {_n_classes(net)}"
        )
    return values


def _check_size(config: Any, params: Mapping[str, np.ndarray]) -> None:
    """Refuse an architecture whose parameters differ from the stored tensors' before
    building it (a damaged or forged config could ask for any amount of memory): the layers
    the config names declare every parameter's name and shape."""
    layers = config_layers(config)
    wanted = {**parameter_shapes(layers), **statistic_shapes(layers)}
    for name, shape in wanted.items():
        if name not in params:
            raise ValueError(f"it stores no tensor {name}, which its architecture needs")
        if params[name].shape != shape:
            raise ValueError(
                f"tensor {name} has shape {params[name].shape} but the net needs {shape}"
            )
    extra = sorted(set(params) - set(wanted))
    if extra:
        raise ValueError(f"its tensors {extra} belong to no parameter of its architecture")


def _count(value: Any, what: str) -> int:
    """A stored count (epoch, step count), which must be a whole number >= 0."""
    if type(value) is not int or value < 0:
        raise ValueError(f"its {what} {value!r} is not a whole number >= 0")
    return value


def _optimizer(
    info: Mapping[str, Any] | None, tensors: Mapping[str, np.ndarray], net: Sequential
) -> Optimizer | None:
    """Rebuild the saved optimizer with its arrays moved to the net's backend and device; each
    array "<slot>.<param>" must have its parameter's shape and dtype, and a slot must hold one
    for every parameter."""
    if info is None:
        return None
    optimizer = optimizer_from_config(info)
    params = {name: tuple(p.shape) for name, p in net.parameters().items()}
    state: dict[str, Any] = {"t": _count(info.get("t", 0), "optimizer step count")}
    slots: dict[str, set[str]] = {}
    for key, value in tensors.items():
        if not key.startswith(OPTIMIZER_PREFIX):
            continue
        slot, _, name = key.removeprefix(OPTIMIZER_PREFIX).partition(".")
        if name not in params:
            raise ValueError(f"optimizer tensor {key} belongs to no parameter of the net")
        if value.shape != params[name] or str(value.dtype) != net.dtype_name:
            raise ValueError(
                f"optimizer tensor {key} is {value.dtype} {value.shape} but parameter {name} "
                f"is {net.dtype_name} {params[name]}"
            )
        slots.setdefault(slot, set()).add(name)
        state[f"{slot}.{name}"] = asarray(value, like=net)
    optimizer.load_state_dict(state)  # checks the slot names
    for slot, names in slots.items():
        if names != set(params):
            missing = ", ".join(sorted(set(params) - names))
            raise ValueError(f"optimizer state {slot!r} lacks parameters {missing}")
    return optimizer
