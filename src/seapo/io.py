"""Small, shared file helpers: JSONL in and out, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line of a JSONL file (gzip too).

    A line that is not JSON raises :class:`~seapo.errors.InputError` naming the file and line.
    """
    import gzip

    from seapo.errors import InputError

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON ({exc.msg})", path=str(path), line=number) from None


def read_jsonl(path: str | Path) -> list[Any]:
    return [obj for _, obj in iter_jsonl(path)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves half a file."""
    count = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


class atomic_open:  # noqa: N801 - used like open()
    """``with atomic_open(path) as f``: writes to a temp file, renames over ``path`` on success."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self.f = os.fdopen(fd, "w", encoding="utf-8")
        return self.f

    def __exit__(self, exc_type, exc, tb) -> None:
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Load a YAML file that must hold a mapping; errors name the file and the line."""
    import yaml

    from seapo.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", path=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", path=str(path),
                         line=None if mark is None else mark.line + 1) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"a {what} file must be a mapping of settings", path=str(path))
    return data


def validate_yaml_model(model_cls: Any, data: dict[str, Any], path: str | Path | None) -> Any:
    """Build a pydantic model from YAML data; a validation error names file, line and field."""
    from pydantic import ValidationError

    from seapo.errors import InputError

    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        line = _yaml_key_line(Path(path), loc) if path is not None else None
        raise InputError(err["msg"], path=None if path is None else str(path), line=line,
                         field=".".join(loc) or None) from None


def _yaml_key_line(path: Path, loc: tuple[str, ...]) -> int | None:
    """Line of the innermost key of ``loc`` that is written in the file (best effort)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for key in reversed(loc):
        for number, line in enumerate(lines, start=1):
            if line.strip().startswith(f"{key}:"):
                return number
    return None
