"""What a command line can do wrong, and the exit statuses of `xpnet`."""

from __future__ import annotations

__all__ = [
    "COMMANDS",
    "EXIT_DIVERGED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "UsageError",
]


class UsageError(Exception):
    """A command line that does not make sense; the message says what to type instead."""


COMMANDS = ("train", "evaluate", "predict", "export", "vanishing", "info", "gradcheck")


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM
