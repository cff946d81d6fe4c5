"""Named extension points (backends, injectors, strategies): registered by a decorator or by a
Python entry point, so a third-party package adds one without editing seapo.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."seapo.backends"]
    my-server = "my_package.backend:MyBackend"

and ``seapo inject --backend my-server`` finds it. seapo's own entries are declared the same way
(and imported directly as well, so a source checkout without installed metadata still works).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from seapo.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> class for one kind of extension (the entry-point group ``seapo.<kind>s``)."""

    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind, self.group = kind, group
        self._builtin_modules = builtin_modules
        self._entries: dict[str, T] = {}
        self._scanned = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: make ``cls`` available under ``name`` (sets ``cls.name``)."""

        def wrap(cls: T) -> T:
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return wrap

    def _scan(self, force: bool = False) -> None:
        if self._scanned and not force:
            return
        for module in self._builtin_modules:
            importlib.import_module(module)
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                cls = ep.load()
                self._entries.setdefault(ep.name, cls)
                if getattr(cls, "name", None) != ep.name:
                    cls.name = ep.name  # type: ignore[attr-defined]
        self._scanned = True

    def names(self) -> list[str]:
        self._scan()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name is an :class:`InputError` listing the known."""
        self._scan()
        if name not in self._entries:
            self._scan(force=True)  # installed since the first look (or a test's temporary package)
        if name not in self._entries:
            raise InputError(f"unknown {self.kind} '{name}'; known: {', '.join(sorted(self._entries))} "
                             f"(third-party ones register under the entry-point group '{self.group}')",
                             field=self.kind)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._scan()
        return name in self._entries

    def check(self, name: str) -> str:
        """``name`` if registered, else a ``ValueError`` (for pydantic validators) listing the known."""
        try:
            self.get(name)
        except InputError as exc:
            raise ValueError(exc.reason) from None
        return name
