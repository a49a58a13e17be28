"""The one gate every file the CLI writes goes through: a command replaces only files it
made itself in this run (or, resuming, the run's own files), never a checkpoint, a user's
file, a symlink or anything but a regular file; `--overwrite` lets it replace regular files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..checkpoint import SUFFIX
from ..files import write_atomic
from .errors import UsageError

__all__ = ["Outputs"]


class Outputs:
    """The files one command may write. `claim(path)` says whether `path` may be written
    (raising UsageError when not) and remembers it as this run's; `write` claims, then writes
    atomically. `overwrite` (the `--overwrite` flag) allows replacing existing regular files;
    links, devices, directories and the like are never replaced."""

    def __init__(self, overwrite: bool = False, option: str = "--out") -> None:
        self.overwrite, self.option = overwrite, option
        self.ours: set[Path] = set()
        self.written: list[Path] = []  # the files this command made, in order

    def adopt(self, paths: Iterable[Path]) -> None:
        """Take existing files as this run's own (a resumed run's files): they may be
        replaced, as long as they are regular files."""
        for path in paths:
            if os.path.lexists(path):
                self._check_kind(path)
            self.ours.add(Path(os.path.abspath(path)))

    def claim(self, path: Path) -> Path:
        """`path`, once it is known that writing it loses nothing the user did not ask to
        lose: it does not exist, or this run wrote it, or `overwrite` is on and it is a
        regular file."""
        key = Path(os.path.abspath(path))
        if os.path.lexists(path):
            self._check_kind(path)
            if key not in self.ours and not self.overwrite:
                raise UsageError(self._refusal(path))
        self.ours.add(key)
        return path

    def write(self, path: Path, data: bytes) -> None:
        """Write `data` to `path` atomically, if `claim` allows it."""
        new = not os.path.lexists(path)
        write_atomic(self.claim(path), data)
        if new:
            self.written.append(path)

    def remove_written(self) -> None:
        """Remove the files this command made: what an interrupted command that saved
        nothing of use leaves behind."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()

    def _check_kind(self, path: Path) -> None:
        """Refuse anything but a regular file, --overwrite or not (an atomic rename would
        replace a link or a device node itself)."""
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode):
            return
        kind = (
            "a symbolic link"
            if stat.S_ISLNK(mode)
            else "a directory"
            if stat.S_ISDIR(mode)
            else "not a regular file"
        )
        raise UsageError(
            f"{path} is {kind}, which xpnet never replaces (not even with --overwrite); "
            f"name a new file, or remove it first"
        )

    def _refusal(self, path: Path) -> str:
        what = "a checkpoint" if path.suffix == SUFFIX else "a file this run did not write"
        return (
            f"{path} already exists and is {what}; xpnet does not replace it: choose another "
            f"{self.option}, or give --overwrite to replace it"
        )
