"""The exit-code convention every stage keeps, and the error that carries a usage problem to it."""

from __future__ import annotations

PASSED = 0
"""The stage ran and its checks passed."""
CHECK_FAILED = 1
"""The stage ran and a check failed (schema violations, drift, a gate, a rollback)."""
USAGE_ERROR = 2
"""The stage could not run: bad option, config, data, schema or profile. Nothing was changed."""
INTERNAL_ERROR = 3
"""A bug in ml-cicd itself; the message asks for a report with the traceback."""


class UsageError(Exception):
    """Bad input that the user must fix. `title` names what is wrong, the message says how to fix it."""

    def __init__(self, title: str, message: str, *, file: str | None = None) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message
        self.file = file
