"""The package's one exception hierarchy.

- BenchmarksError: the base of every error this package raises on purpose.
- UserError: an error a person can fix (a bad option, an unreachable database, a database that needs
  `migrate`, another run holding the lock). The command line prints its message as one line and exits 1;
  anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class BenchmarksError(Exception):
    """Base of every error raised by district-benchmarks."""


class UserError(BenchmarksError):
    """An error a person can fix; the message is one line that says what to do. `option` names the command-line
    option at fault, when there is one (the command line then reports a usage error)."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option
