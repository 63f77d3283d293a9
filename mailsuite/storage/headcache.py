"""Top-level message headers kept in memory, shared by the views of one process.

A maildir message's content never changes under its base name (flag
changes rename only the ``:2,...`` tail; the part cache in ``index.py``
relies on the same rule), so the header bytes read once stay right for as
long as the message exists, whatever other processes do to the folder.
Repeated header work -- ``BODY[HEADER.FIELDS (...)]`` of every message,
``SEARCH FROM``/``SUBJECT`` -- then reads no file and queries no index.

Each :class:`HeadEntry` also carries a small ``memo`` where callers keep
values *derived only from the message content* (decoded search texts of the
header and the body, a rendered header section), so those are computed once
per message too; a value bigger than 1/64 of the cache is not kept.
Entries are keyed by (folder path, base name); a removed message's entry
is never looked up again and ages out.  The cache is bounded by an
estimate of the bytes it holds (least recently used out first).
Thread-safe: pool threads share it.  One per store (no module-level state).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any

_ENTRY_OVERHEAD = 400  # bytes: key, entry object, dict slots
_MEMO_KEYS = 16  # derived values per message at most


class HeadEntry:
    """One message's top-level header (``raw``) and values derived from it."""

    __slots__ = ("_owner", "cost", "key", "memo", "raw")

    def __init__(self, owner: HeaderCache, key: tuple[str, str], raw: bytes) -> None:
        self._owner = owner
        self.key = key
        self.raw = raw
        self.memo: dict[str, Any] = {}
        self.cost = len(raw) + _ENTRY_OVERHEAD

    def remember(self, name: str, value: Any) -> Any:
        """Keep ``value`` (a function of the message content only) under ``name``; returns it.

        Only the first ``_MEMO_KEYS`` names are kept (a client asking for
        ever new header-field lists cannot grow an entry without bound).
        """
        if name not in self.memo and len(self.memo) < _MEMO_KEYS:
            size = _size(value)
            if size <= self._owner.limit // 64:
                self.memo[name] = value
                self._owner.charge(self, size)
        return value


class HeaderCache:
    """(folder, base name) -> :class:`HeadEntry`, at most ``limit`` bytes (estimated)."""

    def __init__(self, limit: int = 32 * 1024 * 1024) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], HeadEntry] = OrderedDict()
        self._total = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total(self) -> int:
        """The estimated bytes held."""
        return self._total

    def get(self, folder: str, base: str) -> HeadEntry | None:
        key = (folder, base)
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
            return entry

    def put(self, folder: str, base: str, raw: bytes) -> HeadEntry:
        """Store the header of a message (replacing an older entry) and return its entry."""
        key = (folder, base)
        entry = HeadEntry(self, key, raw)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old.cost
            self._items[key] = entry
            self._total += entry.cost
            self._trim()
        return entry

    def charge(self, entry: HeadEntry, extra: int) -> None:
        """Account ``extra`` bytes more for ``entry`` (its memo grew)."""
        with self._lock:
            entry.cost += extra
            if self._items.get(entry.key) is entry:
                self._total += extra
                self._trim()

    def _trim(self) -> None:
        while self._total > self.limit and self._items:
            _, old = self._items.popitem(last=False)
            self._total -= old.cost


def _size(value: Any) -> int:
    """A rough size in bytes of a memo value (strings, bytes, lists, tuples of them)."""
    if isinstance(value, bytes | str):
        return sys.getsizeof(value)  # a str of wide characters takes 2-4 bytes each
    if isinstance(value, list | tuple):
        return 60 + sum(_size(v) for v in value)
    return 60
