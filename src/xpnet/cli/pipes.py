"""Output that a reader may stop reading (`xpnet train | head -1`, `xpnet train 2>&1 | head`):
what is printed to stdout or stderr after the reader left is dropped, and the command goes on
to its own end, files and exit status, instead of failing with "Broken pipe" mid-run.

Under `mpiexec` the launcher forwards the ranks' output; MPICH's mpiexec ends the whole job
when it cannot write a line, which no rank can prevent: there the run survives a reader that
leaves only while nothing more is printed (stdout holds nothing between the header and the
summary written after the run's files; the per-epoch log goes to stderr)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["reader_may_leave"]


class _Tolerant:
    """A text stream whose writes and flushes stop, silently, once its reader has gone."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._leave()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._leave()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _leave(self) -> None:
        """Stop writing, and point the file descriptor at /dev/null so that the flush at
        the interpreter's exit does not complain either."""
        self._gone = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Within the block, sys.stdout and sys.stderr tolerate a reader that has gone."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tolerant(streams[0]), _Tolerant(streams[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
