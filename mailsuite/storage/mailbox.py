"""One Maildir folder as a :class:`mailsuite.interfaces.Mailbox` view.

Contracts (DESIGN.md §2 "Storage"):

* All methods block; protocol code calls them through the BlockingRunner.
  A view may be called from several pool threads; calls are serialised by
  a per-view lock.
* ``sync()`` moves ``new/`` into ``cur/`` and assigns UIDs under the
  ``dovecot-uidlist.lock`` dot-lock; it notices flag renames, removals and
  new files of other processes.  It reports what changed since the previous
  ``sync()`` of *this view*, except changes this view made itself through
  ``store_flags``/``expunge`` (the caller already knows those).  Messages this
  view appends or copies in are reported by the next ``sync()`` like any
  other new message.
* Reads take no lock.  A warm open (index snapshot valid, directories and
  uidlist unchanged) does no directory scan and no per-message ``stat``.
* ``store_flags``, ``expunge``, ``append`` and ``copy_to`` publish a
  :class:`MailboxChange` to the hub (when one is given).
* Mod-sequences (RFC 7162; API and file format in ``modseq.py``): stores
  and expunges run under the ``mailsuite.modseq.lock`` dot-lock; the
  uidlist lock may be taken inside it, never the other way round.
* Errors: ``MailError`` NONEXISTENT (folder gone), EXPUNGED (``open_message``
  / ``structure`` of a removed message), OVER_QUOTA, IN_USE (lock timeout),
  BAD_INPUT (invalid flag, 27th keyword).

Directory mtimes are trusted as "nothing changed" only when they are more
than ``MTIME_TRUST`` seconds old when read: a change within the same
timestamp tick would otherwise go unnoticed.

Layout: this module holds :class:`FolderContext` and the public class
:class:`MaildirMailbox` (construction, open, ``sync``, ``copy_to``); the
rest of the view lives in mixins over the shared state of ``viewbase.py``:
``scan.py`` (disk into snapshot), ``modseqview.py`` (mod-sequences),
``flagstore.py`` (STORE), ``writes.py`` (append, copy target, expunge) and
``reading.py`` (listings and message bodies).  Their module docstrings state
which lock each part expects.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import ChangeHub, MailboxChange, SyncResult
from mailsuite.storage import index as idx
from mailsuite.storage.flags import Keywords
from mailsuite.storage.flagstore import FlagStoreMixin
from mailsuite.storage.fsutil import DirSyncer, UniqueNames
from mailsuite.storage.headcache import HeaderCache
from mailsuite.storage.locking import DotLock
from mailsuite.storage.modseq import ModseqLog
from mailsuite.storage.modseqview import ModseqMixin
from mailsuite.storage.quota import MaildirSize
from mailsuite.storage.reading import BODY_CACHE_BYTES, ReadMixin
from mailsuite.storage.reading import STRUCTURE_VERSION as STRUCTURE_VERSION
from mailsuite.storage.scan import TMP_MAX_AGE as TMP_MAX_AGE
from mailsuite.storage.scan import ScanMixin
from mailsuite.storage.uidlist import Uidlist, allocate_uidvalidity
from mailsuite.storage.viewbase import MTIME_TRUST as MTIME_TRUST
from mailsuite.storage.viewbase import DirSeen
from mailsuite.storage.viewbase import Seen as Seen
from mailsuite.storage.viewbase import _arrival_key as _arrival_key
from mailsuite.storage.writes import WriteMixin


def _settled(mtime: int, trusted: int | None, seen: DirSeen, now: float) -> bool:
    """A directory mtime (ns) that needs no listing now: the trusted one, or
    the one last seen until its deadline for one more listing."""
    return mtime == trusted or (mtime == seen[0] and now <= seen[1])


class FolderContext:
    """What all views of one account share: hub, clock, name generator, fsync grouping."""

    def __init__(
        self,
        account: str,
        root: Path,
        hub: ChangeHub | None,
        clock: Callable[[], float],
        names: UniqueNames,
        syncer: DirSyncer,
        quota: MaildirSize,
        snapshots: idx.SnapshotCache | None = None,
        heads: HeaderCache | None = None,
        bodies: HeaderCache | None = None,
    ) -> None:
        self.snapshots = snapshots  # decoded index snapshots shared in the process
        self.heads = heads if heads is not None else HeaderCache()  # message headers in memory
        # whole small messages in memory (ReadMixin.message_bytes)
        self.bodies = bodies if bodies is not None else HeaderCache(BODY_CACHE_BYTES)
        self.account = account
        self.root = root
        self.hub = hub
        self.clock = clock
        self.names = names
        self.syncer = syncer
        self.quota = quota

    def publish(self, folder: str, kind: str, uids: Iterable[int]) -> None:
        if self.hub is not None:
            self.hub.publish(MailboxChange(self.account, folder, kind, tuple(uids)))


class MaildirMailbox(ScanMixin, ModseqMixin, FlagStoreMixin, WriteMixin, ReadMixin):
    """Implements :class:`mailsuite.interfaces.Mailbox` for one folder directory."""

    def __init__(self, ctx: FolderContext, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._path_s = str(path)
        self._ctx = ctx
        self._cur = path / "cur"
        self._cur_s = str(self._cur)
        self._new = path / "new"
        self._new_s = str(self._new)
        self._seen_mtimes: tuple[DirSeen, DirSeen] = ((None, 0.0), (None, 0.0))
        self._tmp = path / "tmp"
        self._uidlist = Uidlist(path)
        self._keywords = Keywords(path)
        self._cache = idx.PartCache(path)
        self._lock = threading.RLock()
        self._flag_cache: dict[str, frozenset[str]] = {}
        self._by_name: dict[str, int] | None = None
        self._by_base: dict[str, int] | None = None
        self._added: set[int] = set()
        self._expunged: set[int] = set()
        self._flagged: set[int] = set()
        self._tmp_cleaned = 0.0
        self._dirty = False
        self._snap = idx.Snapshot()
        self._holding_ms = False
        self._ms = ModseqLog(path, ctx.root, ctx.clock)
        self._ms_seen = False
        self._reported_high = 0
        self.uidvalidity = 0
        self._open()

    def _open(self) -> None:
        """Load the snapshot if still valid, create the uidlist if missing, sync."""
        if not self.path.is_dir():
            raise MailError(ErrorKind.NONEXISTENT)
        for d in (self._cur, self._new, self._tmp):
            d.mkdir(mode=0o700, exist_ok=True)
        cache = self._ctx.snapshots
        snap = cache.load(self.path) if cache is not None else idx.load_snapshot(self.path)
        if snap is not None and snap.uidlist_sig == self._uidlist.stat_sig() and snap.uidvalidity:
            self._snap = snap
        else:
            self._load_uidlist_header()
        self.uidvalidity = self._snap.uidvalidity
        with self._lock:
            self._refresh()
            self._added.clear()
            self._expunged.clear()
            self._flagged.clear()
            self._reported_high = self._ms.highest
            self._save()

    def exists(self) -> bool:
        return self._cur.is_dir()

    def _load_uidlist_header(self) -> None:
        self._uidlist.refresh()
        if not self._uidlist.uidvalidity:
            with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
                self._uidlist.refresh()
                if not self._uidlist.uidvalidity:
                    self._uidlist.uidvalidity = allocate_uidvalidity(
                        self._ctx.root, self._ctx.clock()
                    )
                    self._uidlist.rewrite()
        self._snap = idx.Snapshot(
            uidvalidity=self._uidlist.uidvalidity, next_uid=self._uidlist.next_uid
        )

    def sync(self) -> SyncResult:
        with self._lock:
            self._refresh()
            added = sorted(self._added - self._expunged)
            expunged = sorted(self._expunged)
            flagged = sorted(self._flagged - self._expunged - self._added)
            self._added.clear()
            self._expunged.clear()
            self._flagged.clear()
            self._reported_high = self._ms.highest
            self._save()
            return SyncResult(added=added, expunged=expunged, flags_changed=flagged)

    def changed_on_disk(self) -> bool:
        """True if :meth:`sync` may find something (four ``stat`` calls).

        A directory whose mtime is the one this view last examined (listed,
        or renamed in itself under the modseq lock), but too recent then to
        be trusted (:data:`MTIME_TRUST`), counts as unchanged until that
        mtime is ``MTIME_TRUST`` old; the next sync then lists it once more
        and trusts it.  So a *foreign* writer's change made within the same
        timestamp tick as one this view already saw shows here up to
        ``MTIME_TRUST`` seconds late (``sync()`` itself never trusts such an
        mtime); changes by mailsuite writers show at once through the
        modseq log, deliveries in this process through the change hub.
        """
        snap = self._snap
        try:
            new_m = os.stat(self._new_s).st_mtime_ns
            cur_m = os.stat(self._cur_s).st_mtime_ns
        except FileNotFoundError:
            return True
        if self._uidlist.stat_sig() != snap.uidlist_sig or self._ms.stat_sig() != self._ms.sig:
            return True
        if new_m == snap.new_sig and cur_m == snap.cur_sig:
            return False
        now = time.time()
        seen_new, seen_cur = self._seen_mtimes
        return not (
            _settled(new_m, snap.new_sig, seen_new, now)
            and _settled(cur_m, snap.cur_sig, seen_cur, now)
        )

    def copy_to(self, uids: Iterable[int], dest: Any) -> dict[int, int]:
        if not isinstance(dest, MaildirMailbox):
            raise MailError(ErrorKind.INTERNAL, detail="copy_to needs a MaildirMailbox")
        with self._lock:
            snap = self._snap
            items = []
            for uid in sorted(set(uids)):
                pos = self._pos(uid)
                if pos is not None:
                    items.append((uid, snap.files[pos], snap.sizes[pos]))
            if not items:
                return {}
            dest._ctx.quota.check(sum(i[2] for i in items), len(items))
            placed = []
            for uid, name, size in items:
                got = dest._place_copy(self, name, size)
                if got is not None:
                    placed.append((uid, *got))
        dest._ctx.syncer.sync(dest._cur)
        mapping = dest.assign_uids([b for _, b, _ in placed])
        result = {uid: mapping[b] for uid, b, _ in placed}
        dest._record_new({mapping[b]: tail for _, b, tail in placed})
        dest._ctx.quota.add(sum(i[2] for i in items if i[0] in result), len(result))
        dest._ctx.publish(dest.name, "added", sorted(result.values()))
        return result

    def close(self) -> None:
        """Release the index cache connection (the view stays usable)."""
        self._cache.close()
