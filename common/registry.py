"""One registry class for every plug-in kind (samplers, targets, metrics).

A plug-in registers itself on import (a decorator); a lookup first imports every module of
its package, so adding a method, target or metric is adding one file. ``scoped()`` gives
tests a temporary registration that disappears afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry for one plug-in kind.

    ``kind``: what the entries are ("sampler", "target", "metric"); ``package``: the package
    whose modules are imported before a lookup (their decorators register the entries);
    ``error``: the exception type raised for unknown or duplicate names."""

    def __init__(self, kind: str, package: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.package = package
        self.error = error
        self._entries: dict[str, T] = {}
        self._loaded = False  # loading has started (in the thread holding _lock) or ended
        self._complete = False  # loading has ended
        self._lock = threading.RLock()

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; the same entry again is a no-op."""
        if not name:
            raise self.error(f"a {self.kind} needs a non-empty name")
        if name in self._entries and self._entries[name] is not entry:
            raise self.error(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str):  # noqa: ANN201 - decorator
        """Decorator form of :meth:`add`: ``@REGISTRY.register("name")``."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests); unknown names are ignored."""
        self._entries.pop(name, None)

    def load(self) -> None:
        """Import every public module of the package (and its public sub-packages), once.
        Thread-safe: a lookup in another thread (Dask worker threads) waits until loading
        has ended instead of seeing a half-filled registry; a lookup made by a module while
        it is imported (the loading thread itself) proceeds."""
        if self._complete:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True  # set first: a module may look names up while it is imported
            pkg = importlib.import_module(self.package)
            for mod in pkgutil.iter_modules(pkg.__path__):
                if mod.name.startswith("_"):
                    continue
                try:
                    importlib.import_module(f"{self.package}.{mod.name}")
                except Exception as exc:  # one broken plug-in must not hide the others
                    self._loaded = False
                    raise self.error(
                        f"cannot load {self.kind} module {self.package}.{mod.name}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            self._complete = True

    @property
    def entries(self) -> dict[str, T]:
        """The live name -> entry mapping (tests patch it with ``monkeypatch.setitem``)."""
        self.load()
        return self._entries

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        self.load()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise self.error(f"unknown {self.kind} {name!r}; known: {known}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Registrations made inside the block are removed when it ends (tests)."""
        self.load()
        before = dict(self._entries)
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(before)
