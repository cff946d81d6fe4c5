"""Config files: YAML mappings, and the line a setting is written on (for error messages)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seapo.errors import InputError


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Load a YAML file that must hold a mapping; errors name the file and the line."""
    import yaml

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


def yaml_key_line(path: str | Path, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest part of ``loc`` (keys, list indices) written in the file."""
    import yaml

    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
