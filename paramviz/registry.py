"""A small typed registry used for every plugin family (parameterizations, backbones, objectives, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from paramviz.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered item: its name, the object, and a one-line description for listings."""

    name: str
    obj: T
    description: str = ""


class Registry(Generic[T]):
    """Name -> object mapping that refuses duplicates and suggests close matches for unknown names.

    Args:
        kind: What the registry holds, used in error messages (``"backbone"``).
        hint: How a user lists the valid names, appended to unknown-name errors.
    """

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, obj: T | None = None, *, description: str = "") -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``register(name, obj)`` or as a decorator."""

        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            desc = description or (getattr(item, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, item, desc)
            return item

        if obj is not None:
            return add(obj)
        return add

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise :class:`UnknownNameError` otherwise."""
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        """Return the :class:`Entry` for ``name`` (object plus description)."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries, self.hint) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        """Registered entries in registration order."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
