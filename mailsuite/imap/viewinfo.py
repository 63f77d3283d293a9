"""What the selected view knows per message, without one object per message.

:class:`InfoMap` maps UID -> :class:`~mailsuite.interfaces.MessageInfo` as
the client currently knows it: a storage listing (``Mailbox.messages()``,
a lazy sequence in UID order that later storage changes do not alter) plus a
small dict of overrides (flags this session stored, messages kept until
their EXPUNGE is reported).  Building it is O(1) for a storage
``MessageList`` and items are made on access, so SELECT of a 100,000-message
folder does not create 100,000 objects and idle sessions stay small.
Not thread-safe by itself; the session's rules (selected.py) apply.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from mailsuite.interfaces import MessageInfo


class InfoMap:
    """UID -> MessageInfo over a listing plus overrides (the dict methods the view uses)."""

    __slots__ = ("_base", "_dropped", "_over", "uids")

    def __init__(self, listing: Sequence[MessageInfo]) -> None:
        uids = getattr(listing, "uids", None)
        if not isinstance(uids, list):
            listing = sorted(listing, key=lambda m: m.uid)
            uids = [m.uid for m in listing]
        self._base = listing
        #: the listing's UIDs, ascending (shared with the storage: do not modify)
        self.uids: list[int] = uids
        self._over: dict[int, MessageInfo] = {}
        self._dropped: set[int] = set()

    def _pos(self, uid: int) -> int:
        uids = self.uids
        i = bisect.bisect_left(uids, uid)
        if i < len(uids) and uids[i] == uid and uid not in self._dropped:
            return i
        return -1

    def __getitem__(self, uid: int) -> MessageInfo:
        info = self._over.get(uid)
        if info is not None:
            return info
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        return self._base[i]

    def flags(self, uid: int) -> frozenset[str]:
        """``self[uid].flags`` without making the MessageInfo; KeyError if unknown."""
        info = self._over.get(uid)
        if info is not None:
            return info.flags
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        flags_at = getattr(self._base, "flags_at", None)
        return flags_at(i) if flags_at is not None else self._base[i].flags  # type: ignore[no-any-return]

    def size(self, uid: int) -> int:
        """``self[uid].size`` without making the MessageInfo; KeyError if unknown."""
        info = self._over.get(uid)
        if info is not None:
            return info.size
        i = self._pos(uid)
        if i < 0:
            raise KeyError(uid)
        size_at = getattr(self._base, "size_at", None)
        return size_at(i) if size_at is not None else self._base[i].size  # type: ignore[no-any-return]

    def flags_many(self, uids: list[int]) -> list[frozenset[str]]:
        """:meth:`flags` of many UIDs in one call (the FETCH FLAGS loop)."""
        over, dropped, listed, base = self._over, self._dropped, self.uids, self._base
        flags_at = getattr(base, "flags_at", None)
        n = len(listed)
        flags_range = getattr(base, "flags_range", None)
        if uids and flags_range is not None and not over and not dropped:
            i = bisect.bisect_left(listed, uids[0])
            if listed[i : i + len(uids)] == uids:  # consecutive: no lookup per UID
                return flags_range(i, i + len(uids))  # type: ignore[no-any-return]
        out: list[frozenset[str]] = []
        lo = 0
        for uid in uids:
            info = over.get(uid)
            if info is not None:
                out.append(info.flags)
                continue
            i = bisect.bisect_left(listed, uid, lo if lo < n and listed[lo] <= uid else 0)
            if i >= n or listed[i] != uid or uid in dropped:
                raise KeyError(uid)
            lo = i
            out.append(flags_at(i) if flags_at is not None else base[i].flags)
        return out

    def get(self, uid: int, default: MessageInfo | None = None) -> MessageInfo | None:
        try:
            return self[uid]
        except KeyError:
            return default

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and (uid in self._over or self._pos(uid) >= 0)

    def __setitem__(self, uid: int, info: MessageInfo) -> None:
        self._over[uid] = info
        self._dropped.discard(uid)

    def pop(self, uid: int, default: MessageInfo | None = None) -> MessageInfo | None:
        found = self.get(uid, default)
        self._over.pop(uid, None)
        if self._pos(uid) >= 0:
            self._dropped.add(uid)
        return found

    def __iter__(self) -> Iterator[int]:
        listed = (u for u in self.uids if u not in self._dropped and u not in self._over)
        yield from sorted({*listed, *self._over})

    def __len__(self) -> int:
        extra = sum(1 for u in self._over if self._pos(u) < 0)
        return len(self.uids) - len(self._dropped) + extra

    def keys(self) -> Iterator[int]:
        return iter(self)

    def overrides(self) -> dict[int, MessageInfo]:
        """The entries that do not come from the listing (read-only use)."""
        return self._over
