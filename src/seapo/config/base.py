"""``SeapoConfig``: the base of every settings class (TRL style: one typed, documented,
validated config per component).

A bad value gets the same :class:`~seapo.errors.ConfigError` wherever it comes from -- a
Python call, a YAML file (with the file and line) or a CLI option -- naming the field, the
problem and the value given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from seapo.errors import ConfigError
from seapo.redact import is_secret_name, redact, redact_text

C = TypeVar("C", bound="SeapoConfig")


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "llm.backend.model", "x")``: create the nested mappings on the way."""
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {} if child is None else _as_dict(child)
        node = child
    node[leaf] = value


def one_of(value: Any, choices: Any, what: str) -> Any:
    """``value`` when it is one of ``choices``, else a ``ValueError`` listing them (for validators)."""
    if value not in choices:
        raise ValueError(f"unknown {what} '{value}'; known: {', '.join(map(str, choices))}")
    return value


def check_template(value: str, placeholders: Sequence[str], required: str, why: str = "") -> str:
    """``value`` if it is a ``str.format`` template using only ``placeholders`` and containing
    ``required``, else a ``ValueError`` saying which (for the prompt-template validators)."""
    names = [f"{{{n}}}" for n in placeholders]
    allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    try:
        value.format(**dict.fromkeys(placeholders, ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"the template may use only {allowed} (literal braces doubled): "
                         f"{type(exc).__name__}: {exc}") from None
    if f"{{{required}}}" not in value:
        raise ValueError(f"the template must contain {{{required}}}" + (f", {why}" if why else ""))
    return value


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"cannot set a sub-setting of a {type(value).__name__} value")


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the (nested) model that owns the last element of ``loc``."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return sorted(model.model_fields)


def check_setting_key(model: type[BaseModel], key: str) -> None:
    """Refuse a dotted key that reaches *into* a plain setting (``max_attempts.x``): naming the
    override, not a later "should be an integer". Unknown names are left to validation, which
    lists the known ones; free-form mappings (``injector_options``) take any sub-key."""
    parts = key.split(".")
    node: type[BaseModel] | None = model
    for depth, part in enumerate(parts[:-1]):
        field = node.model_fields.get(part) if node is not None else None
        if field is None:
            return
        annotation = field.annotation
        candidates = [annotation, *(getattr(annotation, "__args__", None) or ())]
        node = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if node is None:
            if any(c is dict or getattr(c, "__origin__", None) is dict for c in candidates):
                return
            setting = ".".join(parts[:depth + 1])
            raise ConfigError(f"'{setting}' is a single setting, not a section: '{key}' cannot be set "
                              f"(use '{setting}=VALUE')", field=key)


def config_error(exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    """One clear error from a pydantic ``ValidationError``: field, problem, value given."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # drop union tags
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):  # a nested config's own error (pydantic runs its __init__)
        message = inner.reason
        loc = loc + tuple(inner.loc)
    elif err["type"] == "extra_forbidden":
        known = _fields_at(model, loc)
        message = "unknown setting" + (f"; known: {', '.join(known)}" if known else "")
    else:
        message = err["msg"].removeprefix("Value error, ")
        secret = any(isinstance(p, str) and is_secret_name(p) for p in loc)
        if "input" in err and not isinstance(err["input"], Mapping) and not secret:
            message += f" (got {redact(err['input'])!r})"
    if len(errors) > 1:
        message += f"; and {len(errors) - 1} more problem(s)"
    return ConfigError(redact_text(message), field=_loc_text(loc) or None, loc=loc)


class SeapoConfig(BaseModel):
    """Settings of one component: every field typed, documented (``description``) and validated.

    Unknown settings are errors, assignments are validated, and a failed validation raises
    :class:`~seapo.errors.ConfigError` (a ``ValueError``) naming the field.
    """

    # allow_inf_nan=False: an inf or nan setting (``--learning-rate inf``) is refused, never trained on.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True,
                              use_enum_values=False, allow_inf_nan=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, type(self)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise config_error(exc, type(self)) from None

    @model_validator(mode="before")
    @classmethod
    def _paths_as_text(cls, data: Any) -> Any:
        # Path settings are stored as text (YAML- and JSON-friendly); accept Path objects for them.
        if isinstance(data, dict):
            return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in data.items()}
        return data

    @classmethod
    def model_validate(cls: type[C], obj: Any, **kwargs: Any) -> C:  # type: ignore[override]
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise config_error(exc, cls) from None

    @classmethod
    def load(cls: type[C], path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
             *, what: str = "config") -> C:
        """Defaults < the YAML file at ``path`` < ``overrides`` (dotted keys: ``{"llm.backend.model": ...}``).

        An error in a value from the file names the file and line; one from an override names
        the override.
        """
        from seapo.config.files import read_yaml_mapping, yaml_key_line

        data = read_yaml_mapping(path, what) if path is not None else {}
        for key, value in (overrides or {}).items():
            check_setting_key(cls, key)
            set_dotted(data, key, value)
        try:
            return cls.model_validate(data)
        except ConfigError as exc:
            loc = exc.loc
            field = _loc_text(loc)
            from_override = any(field == k or field.startswith(k + ".") or k.startswith(field + ".")
                                for k in overrides or {}) if field else False
            if path is None or from_override:
                raise
            raise ConfigError(exc.reason, path=str(path), line=yaml_key_line(path, loc), field=field or None,
                              loc=loc) from None

    def updated(self: C, changes: Mapping[str, Any] | None = None, **fields: Any) -> C:
        """A validated copy with ``changes`` (dotted keys allowed) and ``fields`` applied."""
        data = self.model_dump()
        for key, value in {**(changes or {}), **fields}.items():
            set_dotted(data, key, value.model_dump() if isinstance(value, BaseModel) else value)
        return type(self).model_validate(data)

    def record(self) -> dict[str, Any]:
        """The settings as JSON-ready data for files and logs, secrets redacted (:mod:`seapo.redact`)."""
        return redact(self.model_dump(mode="json"))

    def to_yaml(self) -> str:
        """The settings as YAML (what ``--config`` reads back), secrets redacted: it is written to
        run folders and printed."""
        import yaml

        return yaml.safe_dump(self.record(), sort_keys=False, allow_unicode=True)
