"""State and small helpers shared by the parts of :class:`~mailsuite.storage.mailbox.MaildirMailbox`.

:class:`MailboxBase` declares the per-view attributes (set up by
``MaildirMailbox.__init__``) and holds the helpers every part uses: position
lookup, the uidlist refresh/assign steps (uidlist dot-lock held by the
caller), the modseq lock and the index save.  The mixins in ``scan.py``,
``modseqview.py``, ``flagstore.py``, ``writes.py`` and ``reading.py`` build on
it; methods one mixin calls on another are declared here for type checking
only.

Locking: methods named ``*_locked`` expect the named dot-lock held by the
caller; everything else that mutates the view expects the per-view
``self._lock`` held (see ``mailbox.py`` for the overall contract).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mailsuite.storage import index as idx
from mailsuite.storage.flags import Keywords, info_to_flags
from mailsuite.storage.locking import DotLock
from mailsuite.storage.modseq import ModseqLog
from mailsuite.storage.uidlist import Uidlist, allocate_uidvalidity

if TYPE_CHECKING:
    from mailsuite.storage.mailbox import FolderContext

#: UIDs a scan of ``cur/`` found (renamed, removed, added)
Seen = tuple[list[int], list[int], list[int]]
#: a directory mtime (ns) a view examined and when it must be listed again to trust it
DirSeen = tuple[int | None, float]
#: seconds after which a directory mtime is trusted (see scan.py)
MTIME_TRUST = 1.0

_ARRIVAL = re.compile(r"^(\d+)\.(?:[^.]*?M(\d+))?")


class MailboxBase:
    """Per-view state of one Maildir folder and the helpers all parts share."""

    name: str
    path: Path
    _path_s: str
    uidvalidity: int
    _ctx: FolderContext
    _cur: Path
    _cur_s: str
    _new: Path
    _new_s: str
    #: new/ and cur/ as this view last examined them: (mtime ns, wall-clock
    #: time by which a listing must confirm it); see ``changed_on_disk``
    _seen_mtimes: tuple[DirSeen, DirSeen]
    _tmp: Path
    _uidlist: Uidlist
    _keywords: Keywords
    _cache: idx.PartCache
    _lock: threading.RLock
    _flag_cache: dict[str, frozenset[str]]
    _by_name: dict[str, int] | None
    _by_base: dict[str, int] | None
    _added: set[int]
    _expunged: set[int]
    _flagged: set[int]
    _tmp_cleaned: float
    _dirty: bool
    _snap: idx.Snapshot
    _holding_ms: bool
    _ms: ModseqLog
    _ms_seen: bool
    _reported_high: int

    if TYPE_CHECKING:
        # Implemented by the mixins; declared for the type checker only.
        def _refresh(self, force_cur: bool = False, ms_held: bool = False) -> None: ...
        def _scan_cur(self) -> Seen: ...
        def _apply(
            self,
            removed: set[int],
            renamed: dict[int, str],
            added: list[tuple[int, str, int, float]],
        ) -> None: ...
        def _clean_tmp(self) -> None: ...
        def _note_touched(self, touched: set[int] | None) -> None: ...
        def _reconcile(self, seen: Seen, ms_held: bool) -> None: ...
        def _sync_log_locked(self) -> None: ...
        def _record_new(self, items: dict[int, str]) -> None: ...
        def _letters(self, flags: Iterable[str], create: bool) -> set[str]: ...
        def _find_base(self, base: str) -> str | None: ...
        def open_message(self, uid: int) -> IO[bytes]: ...

    def _locked_refresh(self) -> None:
        """Re-read the uidlist with the lock held; recreate it if it vanished.

        A vanished or emptied uidlist is rebuilt from this view's snapshot with
        the same UIDVALIDITY and next UID, so no UID changes.
        """
        ul = self._uidlist
        ul.refresh()
        if ul.uidvalidity:
            return
        snap = self._snap
        ul.uidvalidity = snap.uidvalidity or allocate_uidvalidity(
            self._ctx.root, self._ctx.clock()
        )
        ul.next_uid = max(ul.next_uid, snap.next_uid)
        for uid, name in zip(snap.uids, snap.files, strict=True):
            ul.by_base.setdefault(name.partition(":")[0], uid)
        ul.rewrite()

    def _assign_locked(self, bases: list[str]) -> None:
        """Give UIDs to ``bases`` that have none, oldest file name first, as
        Dovecot orders new mail (delivery time, then microseconds)."""
        missing = sorted((b for b in bases if b not in self._uidlist.by_base), key=_arrival_key)
        if not missing:
            return
        self._uidlist.assign(missing)
        if self._uidlist.can_append():
            self._uidlist.append([(self._uidlist.by_base[b], b) for b in missing])
        else:
            self._uidlist.rewrite()

    @contextlib.contextmanager
    def _ms_lock(self) -> Iterator[None]:
        """The modseq lock: every mailsuite writer renames, adds and removes
        files in ``cur/`` only while holding it (not reentrant)."""
        with DotLock(self._ms.lock_path, clock=self._ctx.clock, template_dir=self._tmp):
            self._holding_ms = True
            try:
                yield
            finally:
                self._holding_ms = False

    def _cur_mtime(self) -> int | None:
        try:
            return os.stat(self._cur_s).st_mtime_ns
        except FileNotFoundError:
            return None

    def _own_cur_change(self, before: int | None) -> None:
        """This view renamed or removed files in ``cur/`` (modseq lock held):
        if ``cur/`` was as last examined before (mtime ``before``), its new
        mtime is one this view has seen too (``changed_on_disk`` then skips
        a listing of our own change; see there for the limit)."""
        new_seen, (cur_seen, deadline) = self._seen_mtimes
        after = self._cur_mtime()
        if before is None or after is None:
            return
        if before == self._snap.cur_sig:  # listed and trusted: only our change since
            deadline = after / 1e9 + MTIME_TRUST
        elif before != cur_seen:  # changed since we looked: the next check lists it
            return
        # else: keep the deadline of the listing that could not trust cur/ yet
        self._seen_mtimes = (new_seen, (after, deadline))

    def _listing(self) -> set[str]:
        return {n for n in os.listdir(self._cur) if not n.startswith(".")}

    def _base_map(self) -> dict[str, int]:
        if self._by_base is None:
            self._by_base = {n.partition(":")[0]: i for i, n in enumerate(self._snap.files)}
        return self._by_base

    def _save(self) -> None:
        if getattr(self, "_dirty", False):
            self._dirty = False
            self._snap.highest_modseq = max(self._snap.highest_modseq, self._ms.highest)
            try:
                idx.save_snapshot(self.path, self._snap)
            except OSError:
                pass  # a cache: the next open rebuilds it

    def _flags_of_name(self, name: str) -> frozenset[str]:
        return _cached_flags(self._flag_cache, self._keywords, name)

    def _pos(self, uid: int) -> int | None:
        uids = self._snap.uids
        i = bisect.bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else None


def _cached_flags(
    cache: dict[str, frozenset[str]], keywords: Keywords, name: str
) -> frozenset[str]:
    """The flags of a file name, memoised per name tail in ``cache``."""
    tail = name.partition(":")[2]  # "2,<letters>", or something foreign
    flags = cache.get(tail)
    if flags is None:
        info = tail[2:] if tail.startswith("2,") else ""
        flags = cache[tail] = info_to_flags(info, keywords)
    return flags


def _arrival_key(base: str) -> tuple[int, int, str]:
    """Sort key of a maildir base name: seconds, microseconds, then the name."""
    m = _ARRIVAL.match(base)
    if m is None:
        return (0, 0, base)
    return (int(m.group(1)), int(m.group(2) or 0), base)


def _extend(seen: Seen, more: Seen) -> None:
    for have, extra in zip(seen, more, strict=True):
        have.extend(extra)
