"""Derived state: a key-value map of JSON values, rebuilt from the chain.

Contracts read and write through an :class:`Overlay`. Values are kept as
canonical bytes, so a contract can never change stored state by mutating an
object it read, and the bytes feed the state root unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from ledger.encoding import canonical, loads_trusted


class StateReader(Protocol):
    def get_raw(self, key: str) -> bytes | None:
        """The canonical bytes stored under ``key``, or ``None``."""
        ...


def scan_raw(reader: StateReader, prefix: str) -> dict[str, bytes]:
    """Every entry whose key starts with ``prefix``, from a reader that can scan.

    Scans are for the few contracts that must enumerate a small family of
    keys (the organisations, for governance); hot paths use point reads.
    """
    scan = getattr(reader, "scan_raw", None)
    if scan is None:
        raise TypeError(f"{type(reader).__name__} cannot scan state by prefix")
    found: dict[str, bytes] = scan(prefix)
    return found


def read_many(reader: StateReader, keys: Sequence[str]) -> dict[str, bytes | None]:
    """The values of ``keys`` (``None`` where absent): in one round trip when the
    reader can (a :class:`CachedState`'s ``get_many``, a store's ``get_raw_many``),
    else key by key."""
    many = getattr(reader, "get_many", None) or getattr(reader, "get_raw_many", None)
    if many is not None:
        found: dict[str, bytes | None] = many(keys)
        return found
    return {key: reader.get_raw(key) for key in keys}


class MemoryState:
    """A whole state in memory: used by audits, replays and tests."""

    def __init__(self, items: Mapping[str, bytes] | None = None) -> None:
        self.items: dict[str, bytes] = dict(items or {})

    def get_raw(self, key: str) -> bytes | None:
        return self.items.get(key)

    def scan_raw(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in self.items.items() if k.startswith(prefix)}

    def apply(self, changes: Mapping[str, bytes | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


class CachedState:
    """A read-through cache over committed state, kept in step by the one writer.

    The orderer reads every key a transaction touches; without a cache each
    read would be a database round trip. Intake threads read through it too:
    a value read from the database is cached only if no block was recorded
    (:meth:`committed`) since the read began, so a read that raced a commit
    can never leave the older value behind.
    """

    def __init__(self, base: StateReader, *, max_entries: int = 500_000) -> None:
        self._base = base
        self._cache: dict[str, bytes | None] = {}
        self._max = max_entries
        self._generation = 0
        self._lock = threading.Lock()

    def get_raw(self, key: str) -> bytes | None:
        try:
            return self._cache[key]
        except KeyError:
            pass
        generation = self._generation
        value = self._base.get_raw(key)
        self._fill({key: value}, generation)
        return value

    def scan_raw(self, prefix: str) -> dict[str, bytes]:
        # The base is the committed store, which the one writer keeps current.
        return scan_raw(self._base, prefix)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes | None]:
        """The values of ``keys``; the missing ones are read in one go when the
        base can (``get_raw_many``)."""
        found: dict[str, bytes | None] = {}
        missing: list[str] = []
        cache = self._cache
        for key in keys:
            try:
                found[key] = cache[key]
            except KeyError:
                missing.append(key)
        if missing:
            generation = self._generation
            read = read_many(self._base, missing)
            self._fill(read, generation)
            found.update(read)
        return found

    def _fill(self, values: Mapping[str, bytes | None], generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # a block committed meanwhile: these reads may be older
            if len(self._cache) + len(values) >= self._max:
                self._cache.clear()
            self._cache.update(values)

    def committed(self, writes: Mapping[str, bytes | None]) -> None:
        """Record a committed block's writes."""
        with self._lock:
            if len(self._cache) + len(writes) >= self._max:
                self._cache.clear()
            self._cache.update(writes)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._generation += 1


# Parsed state values by their canonical bytes, for Overlay.view: executing a
# block reads the same key and organisation records for every transaction.
_views: dict[bytes, Any] = {}
_VIEWS_MAX = 20_000


class Overlay:
    """Buffered writes over a reader; ``child()`` nests one per transaction."""

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[str, bytes | None] = {}

    def get_raw(self, key: str) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._base.get_raw(key)

    def get(self, key: str) -> Any:
        raw = self.get_raw(key)
        return None if raw is None else loads_trusted(raw)

    def scan_raw(self, prefix: str) -> dict[str, bytes]:
        found = scan_raw(self._base, prefix)
        for key, value in self._writes.items():
            if key.startswith(prefix):
                if value is None:
                    found.pop(key, None)
                else:
                    found[key] = value
        return found

    def scan(self, prefix: str) -> list[tuple[str, Any]]:
        """Entries under ``prefix`` in key order (code points), values decoded."""
        return [(k, loads_trusted(v)) for k, v in sorted(self.scan_raw(prefix).items())]

    def view(self, key: str) -> Any:
        """The parsed value of ``key``, shared between readers: for checks that
        only read it. Never modify what it returns; :meth:`get` gives a copy."""
        raw = self.get_raw(key)
        if raw is None:
            return None
        try:
            return _views[raw]
        except KeyError:
            pass
        value = loads_trusted(raw)
        if len(_views) >= _VIEWS_MAX:
            _views.clear()
        _views[raw] = value
        return value

    def exists(self, key: str) -> bool:
        return self.get_raw(key) is not None

    def put(self, key: str, value: object) -> None:
        if value is None:
            raise ValueError("use delete() to remove a key")
        self._writes[key] = canonical(value)

    def delete(self, key: str) -> None:
        self._writes[key] = None

    def child(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        parent._writes.update(self._writes)

    @property
    def writes(self) -> Mapping[str, bytes | None]:
        return self._writes

    def sorted_changes(self) -> list[tuple[str, bytes | None]]:
        """The writes sorted by key, values as canonical bytes, for the state root."""
        return sorted(self._writes.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._writes)
