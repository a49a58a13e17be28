"""Atomic file writes: every file xpnet saves (checkpoints, metrics, histories, pictures,
predictions) appears whole or not at all, so a run killed mid-write loses nothing."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

__all__ = ["remove_stale_temporaries", "write_atomic"]


def write_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `target`, fsync, then rename over it (and fsync the
    directory), so readers see the old file or the new one, never half of one; if anything
    fails on the way (an exception at any step, a full disk), the temporary file is removed
    and the old file is left as it was. The file is created with mode 0o666 less the umask,
    as any new file (mkstemp would make it 0o600). OS errors name `target`, never the hidden
    temporary file."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(_TOKEN_BYTES)}.tmp")
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


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files `write_atomic(target, ...)` leaves when its process is
    killed (SIGKILL, a power cut) between creating and renaming one; returns those removed.
    Call it where no other process writes `target` (a run's own files, on start or resume)."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}\.tmp")
    try:
        names = os.listdir(target.parent)
    except FileNotFoundError:
        return []
    stale = [target.with_name(name) for name in names if pattern.fullmatch(name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


_TOKEN_BYTES = 8  # the random part of a temporary file's name


def _naming(err: OSError, target: Path) -> OSError:
    """The same kind of OSError, about `target`."""
    return type(err)(err.errno, err.strerror, str(target))
