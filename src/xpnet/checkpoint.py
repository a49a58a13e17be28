"""Checkpoints: a net's weights, architecture and training state in one safetensors file.

The file holds the parameters (W1, b1, ...) and the optimizer's arrays ("optimizer/m.W1", ...)
as tensors; everything else (the MLP config, the optimizer's name, hyperparameters and step
count, the epoch, the shuffling seed, the history, the caller's metadata and a SHA-256 of the
tensors) is JSON in the safetensors header. Loading parses JSON and raw arrays only, never
pickles. Saving writes a temporary file in the same directory, fsyncs it and renames it over
the old one, so a process killed mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from .backend import asarray, to_numpy
from .model import MLP
from .optim import OPTIMIZERS, Optimizer

FORMAT = "xpnet-checkpoint"
VERSION = 1
FILENAME = "checkpoint.safetensors"
SUFFIX = ".safetensors"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit: corrupt, truncated, foreign, mismatched."""


@dataclasses.dataclass
class Checkpoint:
    """What `load_checkpoint` returns: the net, the optimizer with its state (None if none was
    saved), the number of epochs trained, the shuffling seed, the history records and the
    caller's metadata."""

    net: MLP
    optimizer: Optimizer | None
    epoch: int
    seed: int | None
    history: list[dict[str, float]]
    metadata: dict[str, Any]
    path: Path


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file `path` names: itself if it ends in .safetensors, else the run
    directory's checkpoint.safetensors."""
    path = Path(path)
    return path if path.suffix == SUFFIX else path / FILENAME


def save(
    net: MLP,
    path: str | os.PathLike,
    metadata: Mapping[str, Any] | None = None,
    *,
    optimizer: Optimizer | None = None,
    epoch: int = 0,
    seed: int | None = None,
    history: Sequence[Mapping[str, float]] = (),
) -> Path:
    """Write `net` (and, for resuming, `optimizer`'s state, `epoch`, the shuffling `seed` and the
    `history` records) to `path`, a .safetensors file or a run directory (created if needed).
    `metadata` must be JSON-serializable. Atomic: the old file survives a crash. Returns the
    file written."""
    target = checkpoint_path(path)
    tensors = {name: _host(p) for name, p in net.parameters().items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": net.config(),
        "epoch": int(epoch),
        "seed": seed,
        "history": [dict(r) for r in history],
        "metadata": dict(metadata or {}),
    }
    if optimizer is not None:
        state = optimizer.state_dict()
        header["optimizer"] = {
            "name": _optimizer_name(optimizer),
            "hyperparameters": _hyperparameters(optimizer),
            "t": int(state["t"]),
        }
        tensors.update({f"{OPTIMIZER_PREFIX}{k}": _host(v) for k, v in state.items() if k != "t"})
    header["sha256"] = _digest(tensors)
    try:
        text = {"xpnet": json.dumps(header, allow_nan=True)}
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint metadata must be JSON-serializable: {err}") from err
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, safetensors.numpy.save(tensors, metadata=text))
    return target


def load(path: str | os.PathLike, backend: Any = None, device: Any = None) -> MLP:
    """The MLP saved in `path` (a .safetensors file or a run directory), on `backend` (default
    "auto": cupy when a GPU is usable, else numpy) and `device`."""
    return load_checkpoint(path, backend, device).net


def load_checkpoint(path: str | os.PathLike, backend: Any = None, device: Any = None) -> Checkpoint:
    """Everything `save` wrote: the net, optimizer, epoch, seed, history and metadata."""
    source = checkpoint_path(path)
    header, tensors = _read(source)
    try:
        net = MLP(**header["config"], backend=backend or "auto", device=device)
    except (TypeError, KeyError) as err:
        raise CheckpointError(f"{source}: the stored architecture is invalid ({err})") from err
    params = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    for name, value in params.items():
        if str(value.dtype) != net.dtype_name:
            raise CheckpointError(
                f"{source}: tensor {name} is {value.dtype} but the net is {net.dtype_name}; "
                "the file was not written by xpnet.save"
            )
    try:
        net.load_state_dict(params)
    except (KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        raise CheckpointError(f"{source}: {message}") from err
    return Checkpoint(
        net=net,
        optimizer=_optimizer(header.get("optimizer"), tensors, net, source),
        epoch=int(header.get("epoch", 0)),
        seed=header.get("seed"),
        history=list(header.get("history", [])),
        metadata=dict(header.get("metadata", {})),
        path=source,
    )


def load_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The caller's metadata of a checkpoint (verified like `load_checkpoint`), without building
    the net: e.g. to learn which backend a run used before loading it there."""
    return dict(_read(checkpoint_path(path))[0].get("metadata", {}))


# -- writing ----------------------------------------------------------------------------------
def _host(a: Any) -> np.ndarray:
    """A contiguous host copy of any backend's array (safetensors needs C order)."""
    return np.ascontiguousarray(to_numpy(a))


def _optimizer_name(optimizer: Optimizer) -> str:
    for name, cls in OPTIMIZERS.items():
        if type(optimizer) is cls:
            return name
    raise CheckpointError(
        f"cannot save optimizer {type(optimizer).__name__}: only {', '.join(OPTIMIZERS)} are known"
    )


def _hyperparameters(optimizer: Optimizer) -> dict[str, float]:
    """The optimizer's constructor arguments (lr, momentum, beta1, ...), read from the
    attributes of the same names, so that `type(optimizer)(**them)` rebuilds it."""
    names = inspect.signature(type(optimizer)).parameters
    return {name: getattr(optimizer, name) for name in names}


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = tensors[name]
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _write_atomic(target: Path, data: bytes) -> None:
    """Write to a temporary file beside `target`, fsync, then rename over it (and fsync the
    directory), so readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -- reading ----------------------------------------------------------------------------------
def _read(source: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The xpnet header and the tensors of `source`, checked against the stored digest."""
    if not source.is_file():
        missing = source.parent if not source.parent.is_dir() else source
        raise CheckpointError(
            f"no such file or directory: {missing}; give a run directory (with {FILENAME}) "
            "or a .safetensors file written by xpnet.save"
        )
    data = source.read_bytes()
    try:
        tensors = safetensors.numpy.load(data)
    except SafetensorError as err:
        raise CheckpointError(
            f"{source} is not a readable safetensors file (corrupt or truncated: {err}); "
            "use an intact copy"
        ) from err
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    try:
        header = json.loads(meta["xpnet"])
        if header.get("format") != FORMAT:
            raise ValueError("wrong format tag")
    except (KeyError, ValueError, AttributeError) as err:
        raise CheckpointError(
            f"{source} is a safetensors file but not an xpnet checkpoint (no xpnet header); "
            "load it with safetensors, then net.load_state_dict(...)"
        ) from err
    if header.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{source} was written by a newer xpnet (format version {header['version']}); "
            "upgrade xpnet to load it"
        )
    tensors = {k: np.array(v) for k, v in tensors.items()}  # writeable copies
    if header.get("sha256") != _digest(tensors):
        raise CheckpointError(
            f"{source} is corrupt: its tensors do not match the stored SHA-256; use an intact copy"
        )
    return header, tensors


def _optimizer(
    info: Mapping[str, Any] | None, tensors: Mapping[str, np.ndarray], net: MLP, source: Path
) -> Optimizer | None:
    """Rebuild the saved optimizer with its arrays moved to the net's backend and device."""
    if info is None:
        return None
    try:
        optimizer = OPTIMIZERS[info["name"]](**info["hyperparameters"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: the stored optimizer is invalid ({err})") from err
    state: dict[str, Any] = {"t": int(info.get("t", 0))}
    for key, value in tensors.items():
        if key.startswith(OPTIMIZER_PREFIX):
            state[key.removeprefix(OPTIMIZER_PREFIX)] = asarray(value, like=net)
    optimizer.load_state_dict(state)
    return optimizer
