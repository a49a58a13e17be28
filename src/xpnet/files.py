"""Atomic file writes: every file xpnet saves (checkpoints, metrics, histories, pictures,
predictions) appears whole or not at all, so a run killed mid-write loses nothing."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `target`, fsync, then rename over it (and fsync the
    directory), so readers see the old file or the new one, never half of one. The file is
    created with mode 0o666 less the umask, as any new file (mkstemp would make it 0o600)."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
