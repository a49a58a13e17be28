"""SIGTERM (what batch schedulers and `docker stop` send) treated as Ctrl-C is, and signals
held while a run's last files are written.

SIGTERM raises `Terminated`, a KeyboardInterrupt, so one code path saves the run for both;
the exit status tells them apart (130 for SIGINT, 143 for SIGTERM, 128 + the signal)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED

__all__ = ["Terminated", "exit_status", "held", "terminate_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C, exit 143."""


def exit_status(stop: KeyboardInterrupt) -> int:
    """128 + the signal: 143 for SIGTERM, 130 for SIGINT (Ctrl-C)."""
    return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (in the main thread; elsewhere signals
    cannot be handled and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def held() -> Iterator[list[KeyboardInterrupt]]:
    """Within the block, SIGINT and SIGTERM do not interrupt: they are recorded (as the
    exception each would have raised) in the list the block gets, for the caller to act on
    once its files are whole."""
    caught: list[KeyboardInterrupt] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def record(signum: int, frame: FrameType | None) -> None:
        caught.append(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
