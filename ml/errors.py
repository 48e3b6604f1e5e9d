"""Errors a user can meet, and how the CLI reports them.

Raise :class:`UserError` for anything the user can fix (a wrong path, a bad config value, a
service that is not running, malformed data). The CLI prints it as one line, ``error: <what is
wrong> — <what to do>``, and exits non-zero without a traceback. Everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; rendered as one line by the CLI."""

    exit_code = 2

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.what} — {self.fix}" if self.fix else self.what


class ServiceUnavailable(UserError):
    """A backing service (MLflow, Feast, Redis, Postgres, serving) could not be reached."""

    exit_code = 3
