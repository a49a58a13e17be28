"""Atomic file writes: every file xpnet saves (checkpoints, metrics, histories, pictures,
predictions) appears whole or not at all, so a run killed mid-write loses nothing."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `target`, fsync, then rename over it (and fsync the
    directory), so readers see the old file or the new one, never half of one; if anything
    fails on the way (an exception at any step, a full disk), the temporary file is removed
    and the old file is left as it was. The file is created with mode 0o666 less the umask,
    as any new file (mkstemp would make it 0o600). OS errors name `target`, never the hidden
    temporary file."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as err:
        raise _naming(err, target) from None
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise _naming(err, target) from err
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _naming(err: OSError, target: Path) -> OSError:
    """The same kind of OSError, about `target`."""
    return type(err)(err.errno, err.strerror, str(target))
