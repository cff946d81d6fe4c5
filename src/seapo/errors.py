"""Exceptions that carry enough context for a user to fix their input."""

from __future__ import annotations


class SeapoError(Exception):
    """Base class of every error seapo raises on purpose."""


class InputError(SeapoError):
    """Bad user input: names the file, the line (1-based) and the field when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field '{field}')" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ModelNotFoundError(SeapoError):
    """A model argument that none of the accepted forms resolves."""
