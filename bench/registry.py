"""One generic name registry with "did you mean": methods, tasks, presets, model aliases and executors.

A leaf module (it imports only ``bench.errors``), so ``methods/`` and ``suites/`` may use it. A lookup of an
unknown name raises an ``InputError`` subclass whose one-line message names the value, the closest allowed
name and every allowed name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from bench.errors import InputError

T = TypeVar("T")


def did_you_mean(value: str, allowed: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` for the closest allowed name (case-insensitive), or ``""``."""
    close = closest(value, allowed)
    return f" (did you mean {close!r}?)" if close else ""


def closest(value: str, allowed: list[str] | tuple[str, ...]) -> str | None:
    """The allowed name closest to ``value`` (case-insensitive), or None."""
    by_lower = {name.lower(): name for name in reversed(list(allowed))}
    match = difflib.get_close_matches(value.lower(), list(by_lower), n=1)
    return by_lower[match[0]] if match else None


class UnknownNameError(InputError):
    """An unknown registered name; the message is one line with the allowed names."""


def unknown_name(
    kind: str, value: str, allowed: list[str], where: str = "", error: type[InputError] = UnknownNameError
) -> InputError:
    """The one-line error for a bad name: the value, a close match if any, and every allowed name."""
    return error(
        f"unknown {kind} {value!r}{where}{did_you_mean(value, allowed)}; allowed: {', '.join(allowed)}"
    )


class Registry(Mapping[str, T], Generic[T]):
    """Named items of one ``kind`` ("method", "preset", ...), in registration order; duplicates are refused.

    ``registry[name]`` raises ``KeyError`` as any mapping does; ``lookup(name)`` raises the one-line
    ``error`` (``UnknownNameError`` unless given). ``loader`` runs once before the first read (lazy imports
    of the modules whose decorators fill the registry). ``casefold`` looks names up case-insensitively.
    """

    def __init__(
        self,
        kind: str,
        error: type[InputError] = UnknownNameError,
        loader: Callable[[], None] | None = None,
        casefold: bool = False,
    ) -> None:
        self.kind, self.error, self._loader, self.casefold = kind, error, loader, casefold
        self._items: dict[str, T] = {}

    def _load(self) -> None:
        if self._loader is not None:
            loader, self._loader = self._loader, None
            loader()

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; registering another item under a taken name is an error."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def _key(self, name: str) -> str:
        return name.strip().lower() if self.casefold else name

    def __getitem__(self, name: str) -> T:
        self._load()
        return self._items[self._key(name)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and self._key(name) in self._items

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._items)

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def names(self) -> list[str]:
        return list(self)

    def unknown(self, value: str, allowed: list[str] | None = None, where: str = "") -> InputError:
        """The one-line error for a bad name: the value, a close match if any, and every allowed name."""
        allowed = self.names() if allowed is None else allowed
        return unknown_name(self.kind, value, allowed, where, self.error)

    def lookup(self, name: str) -> T:
        """The item registered as ``name``, or the one-line error."""
        if name not in self:
            raise self.unknown(name)
        return self[name]
