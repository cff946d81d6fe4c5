"""Generate a typer command from a :class:`~seapo.config.SeapoConfig`: one option per setting.

Every leaf field of the config (nested configs included) becomes an option whose help text is
the field's description, so the CLI and the Python API cannot drift apart. A nested field
gets the shortest flag no shallower field has taken (``--seed`` for ``seed``,
``--rules-seed`` for ``rules.seed``); ``aliases`` keep short, familiar names (``--model``,
``-o``). Values come, in increasing priority, from the defaults, ``--config FILE.yaml``, the
options, and ``--set KEY=VALUE`` (any setting, including those without an option).

Errors are handled here for every command alike: a :class:`~seapo.errors.SeapoError` is
printed as one line and ends the command with its exit code (docs/cli.md).
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 - typer needs real Optional[...] annotations

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from seapo.config.base import SeapoConfig
from seapo.errors import ConfigError, SeapoError

SCALARS = (bool, int, float, str, Path)


@dataclass
class Flag:
    """One generated option."""

    path: str
    """Dotted config key (``llm.backend.model``)."""
    param: str
    """The Python parameter name typer sees."""
    decls: list[str]
    kind: type
    is_list: bool
    help: str
    panel: str | None


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return annotation


def _leaf_kind(annotation: Any) -> tuple[type, bool, tuple[str, ...]] | None:
    """(typer type, is a list, choices) of a field that can be an option; None when it cannot."""
    annotation = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str, False, tuple(map(str, typing.get_args(annotation)))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str, False, tuple(str(m.value) for m in annotation)
    if origin in (list, tuple, Sequence, Collection):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        inner = _leaf_kind(args[0]) if len(args) == 1 else None
        return (str, True, inner[2]) if inner and not inner[1] else None
    if annotation in SCALARS:
        return annotation, False, ()
    return None


def _nested_class(field: FieldInfo) -> type[BaseModel] | None:
    """The config class of a nested field: the default's own class (a registry-chosen subclass
    such as the default backend's config), else the annotation."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, BaseModel):
        return type(default)
    annotation = _strip_optional(field.annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _walk(model: type[BaseModel], prefix: tuple[str, ...], flatten: bool
          ) -> Iterator[tuple[tuple[str, ...], FieldInfo, type[BaseModel]]]:
    for name, field in model.model_fields.items():
        nested = _nested_class(field)
        if nested is not None:
            if flatten:
                yield from _walk(nested, (*prefix, name), flatten)
            continue
        yield (*prefix, name), field, model


def _dotted_get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part, None)
    return obj


def _show(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value) or "none"
    if isinstance(value, str) and "\n" in value:
        return "(multi-line text; see the config reference)"
    return str(value)


def build_flags(config_cls: type[SeapoConfig], *, aliases: Mapping[str, Sequence[str]] = {},  # noqa: B006
                exclude: Collection[str] = (), positional: Collection[str] = (),
                flatten: bool = True) -> list[Flag]:
    """The options of ``config_cls``'s leaf fields (see the module docstring for the naming rule)."""
    try:
        defaults: Any = config_cls()
    except ConfigError:
        defaults = None
    leaves = [(p, f, m) for p, f, m in _walk(config_cls, (), flatten) if ".".join(p) not in exclude]
    taken: set[str] = {decl for decls in aliases.values() for decl in decls}
    flags: list[Flag] = []
    for index, (path, field, _owner) in enumerate(sorted(leaves, key=lambda leaf: len(leaf[0]))):
        key = ".".join(path)
        kind = _leaf_kind(field.annotation)
        if kind is None or key in positional:
            continue
        typ, is_list, choices = kind
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        parts = [*path[:-1], str(extra.get("cli_name", path[-1]))]
        if key in aliases:
            decls = list(aliases[key])
        else:
            name = next(n for k in range(1, len(parts) + 1)
                        if f"--{(n := '-'.join(parts[-k:]).replace('_', '-'))}" not in taken or k == len(parts))
            decls = [f"--{name}/--no-{name}"] if typ is bool else [f"--{name}"]
        for decl in decls:
            taken.update(d for d in decl.split("/") if d.startswith("-"))
        text = (field.description or "").strip()
        if choices:
            text += f" Choices: {', '.join(choices)}."
        if is_list:
            text += " Comma-separated."
        default = _dotted_get(defaults, path) if defaults is not None else field.default
        text += f" [default: {extra.get('show_default', _show(default))}]"  # None reads "auto" unless told
        if len(path) > 1:
            text += f" [config: {key}]"
        text = text.replace("[", "\\[")  # typer renders help as rich markup, where [x] would vanish
        flags.append(Flag(key, f"opt_{index}", decls, typ, is_list, text,
                          ".".join(path[:-1]) or None))
    return flags


def parse_set(pairs: Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=1", "inject.error_types=[logic]"]`` -> dotted overrides (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"'{pair}' is not KEY=VALUE (e.g. --set train.epochs=1)", field="--set")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"the value of --set {key.strip()} is not valid YAML: {exc}", field="--set") from None
    return out


def print_error(exc: BaseException) -> None:
    """One line on stderr, never read as rich markup (messages hold [brackets])."""
    from seapo.progress import console

    console.print("[bold red]error:[/] ", end="")
    console.print(str(exc), markup=False, highlight=False)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of a command body: a SeapoError becomes a printed line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SeapoError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def config_command(config_cls: type[SeapoConfig], run: Callable[..., Any], *, doc: str,
                   params: Sequence[inspect.Parameter] = (), positional: Mapping[str, str] = {},  # noqa: B006
                   aliases: Mapping[str, Sequence[str]] = {}, exclude: Collection[str] = (),  # noqa: B006
                   flatten: bool = True, default_file: Callable[[], Path] | None = None) -> Callable[..., None]:
    """A typer command calling ``run(config, **extra)``.

    ``params``: extra typer parameters that are not settings (an input path); their values
    reach ``run`` by name. ``positional``: config keys taken as optional positional arguments
    (key -> help). ``aliases``: config key -> option declarations replacing the generated one.
    ``exclude``: keys without an option. ``flatten``: False gives options only for top-level
    scalars (nested sections through ``--set`` and ``--config``). ``default_file``: the YAML file
    read when no ``--config`` is given (``seapo run``'s packaged demo).
    """
    flags = build_flags(config_cls, aliases=aliases, exclude=exclude, positional=positional, flatten=flatten)
    by_param = {f.param: f for f in flags}
    by_path = {f.path: f for f in flags}
    signature: list[inspect.Parameter] = list(params)
    positional_params = {}
    for index, (key, help_text) in enumerate(positional.items()):
        name = f"arg_{index}"
        positional_params[name] = key
        signature.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                           annotation=Optional[str],  # noqa: UP045
                                           default=typer.Argument(None, help=help_text, show_default=False,
                                                                  metavar=key.rsplit(".", 1)[-1].upper())))
    signature.append(inspect.Parameter(
        "config_file", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],  # noqa: UP045
        default=typer.Option(None, "--config", "-c", help="YAML file of these settings (`seapo config show` "
                             "prints one); options given here override it.", show_default=False)))
    signature.append(inspect.Parameter(
        "set_", inspect.Parameter.KEYWORD_ONLY, annotation=list[str],
        default=typer.Option([], "--set", metavar="KEY=VALUE", show_default=False,
                             help="Override any setting by its config key, dotted for nested ones (the keys of "
                                  "--config; value read as YAML; repeatable).")))
    for flag in flags:
        signature.append(inspect.Parameter(
            flag.param, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[flag.kind],  # noqa: UP045
            default=typer.Option(None, *flag.decls, help=flag.help, show_default=False,
                                 rich_help_panel=f"Settings: {flag.panel}" if flag.panel else None)))
    extra_names = [p.name for p in params]

    @handle_errors
    def command(**kwargs: Any) -> None:
        overrides: dict[str, Any] = {}
        for name, key in positional_params.items():
            if kwargs.get(name) is not None:
                overrides[key] = kwargs[name]
        for name, flag in by_param.items():
            value = kwargs.get(name)
            if value is None:
                continue
            if flag.is_list:
                value = [v.strip() for v in str(value).split(",") if v.strip()]
            overrides[flag.path] = value
        overrides.update(parse_set(kwargs.get("set_") or []))
        try:
            path = kwargs.get("config_file") or (default_file() if default_file else None)
            config = config_cls.load(path, overrides)
        except ConfigError as exc:
            flag = by_path.get(exc.field or "")
            if flag is not None and flag.path in overrides:
                exc.args = (f"{exc.args[0]} [option {flag.decls[0].split('/')[0]}]",)
            raise
        run(config, **{name: kwargs[name] for name in extra_names})

    signature.sort(key=lambda p: p.kind != inspect.Parameter.POSITIONAL_OR_KEYWORD)  # stable: arguments first
    command.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    command.__doc__ = doc.replace("[", "\\[")
    command.__name__ = getattr(run, "__name__", "command")
    return command
