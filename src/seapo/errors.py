"""Exceptions that carry enough context for a user to fix their input, and the exit codes.

Every ``seapo`` command exits with one of three codes (docs/cli.md):

* ``0`` -- it did what was asked;
* ``1`` -- it ran, but produced nothing usable (:class:`NoUsableOutput`: no record kept, no
  negative accepted, training diverged);
* ``2`` -- bad input: a bad option, config value, file or data row, ``prepare --strict`` and a
  row was rejected, an output that cannot be written (:class:`InputError`, and click's own
  usage errors, which also exit 2).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NO_OUTPUT = 1
EXIT_BAD_INPUT = 2


class SeapoError(Exception):
    """Base class of every error seapo raises on purpose; ``exit_code`` is the CLI's exit status."""

    exit_code: int = EXIT_BAD_INPUT


class InputError(SeapoError):
    """Bad user input: names the file, the line (1-based) and the field when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field '{field}')" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ConfigError(InputError, ValueError):
    """A config value that fails validation (from Python, a YAML file or a CLI option).

    A ``ValueError`` too, so code that catches pydantic's ``ValidationError`` as a
    ``ValueError`` keeps working. ``loc`` is the field's path as pydantic gives it.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None, loc: tuple = ()) -> None:
        super().__init__(message, path=path, line=line, field=field)
        self.loc = loc


class NoUsableOutput(SeapoError):
    """The command ran but nothing usable came out of it (exit code 1)."""

    exit_code = EXIT_NO_OUTPUT


class BudgetExceeded(SeapoError):
    """A backend's token budget (``token_budget``) is spent: the run stops; what was finished is kept
    (exit 1), and rerunning the same command continues from it."""

    exit_code = EXIT_NO_OUTPUT


class ModelNotFoundError(SeapoError):
    """A model argument that none of the accepted forms resolves."""


class TrainingDiverged(NoUsableOutput):
    """A training step's loss, gradients or weights became non-finite; nothing was saved as the
    result (exit code 1). Checkpoints of earlier, finite steps are kept."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}; nothing was saved as the result. Lower the learning rate "
                         "(--learning-rate) or clip gradients harder (--max-grad-norm) and train again")
