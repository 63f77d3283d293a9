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
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import ChangeHub, MailboxChange, MessageInfo, StoreResult, SyncResult
from mailsuite.storage import index as idx
from mailsuite.storage.flags import (
    FLAG_TO_LETTER,
    Keywords,
    build_info,
    info_to_flags,
    known_letter,
    split_name,
    validate_flag,
    vsize_from_base,
)
from mailsuite.storage.fsutil import DirSyncer, UniqueNames
from mailsuite.storage.locking import DotLock
from mailsuite.storage.messages import CHUNK, CrlfNormalizer, MessageList, crlf_copy, vsize_of_file
from mailsuite.storage.modseq import ModseqLog, tail_of
from mailsuite.storage.quota import MaildirSize
from mailsuite.storage.uidlist import Uidlist, allocate_uidvalidity

#: UIDs a scan of ``cur/`` found (renamed, removed, added)
Seen = tuple[list[int], list[int], list[int]]

MTIME_TRUST = 1.0
TMP_MAX_AGE = 36 * 3600
STRUCTURE_VERSION = 1


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
    ) -> None:
        self.snapshots = snapshots  # decoded index snapshots shared in the process
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


def _trusted(st: os.stat_result) -> int | None:
    return st.st_mtime_ns if time.time() - st.st_mtime > MTIME_TRUST else None


class MaildirMailbox:
    """Implements :class:`mailsuite.interfaces.Mailbox` for one folder directory."""

    def __init__(self, ctx: FolderContext, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._ctx = ctx
        self._cur = path / "cur"
        self._cur_s = str(self._cur)
        self._new = path / "new"
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

    # ------------------------------------------------------------------ open
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

    # ------------------------------------------------------------------ sync
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
        snap = self._snap
        try:
            new_m = os.stat(self._new).st_mtime_ns
            cur_m = os.stat(self._cur).st_mtime_ns
        except FileNotFoundError:
            return True
        return (
            snap.new_sig != new_m
            or snap.cur_sig != cur_m
            or self._uidlist.stat_sig() != snap.uidlist_sig
            or self._ms.stat_sig() != self._ms.sig
        )

    def _refresh(self, force_cur: bool = False, ms_held: bool = False) -> None:
        """Bring ``self._snap`` up to date; record changes in the pending sets.

        The modseq log is read *before* ``cur/`` is listed, so the names the
        view shows are never older than the modseqs it shows; changes the log
        does not account for get a modseq (``ms_held``: the caller holds the
        modseq lock).
        """
        try:
            new_st = os.stat(self._new)
            cur_st = os.stat(self._cur)
        except FileNotFoundError:
            raise MailError(ErrorKind.NONEXISTENT) from None
        if self._keywords.refresh():
            self._flag_cache = {}  # replaced, not cleared: messages() listings keep theirs
        touched = self._ms.refresh(self.uidvalidity)
        if self._ms_seen and (touched is None or touched):
            self._note_touched(touched)
            force_cur = True
        self._ms_seen = True
        seen: Seen = ([], [], [])
        self._refresh_files(new_st, cur_st, force_cur, seen)
        if seen != ([], [], []) or not self._ms.valid:
            self._reconcile(seen, ms_held)

    def _refresh_files(
        self, new_st: os.stat_result, cur_st: os.stat_result, force_cur: bool, seen: Seen
    ) -> None:
        snap = self._snap
        ul_sig = self._uidlist.stat_sig()
        new_changed = snap.new_sig is None or new_st.st_mtime_ns != snap.new_sig
        cur_changed = force_cur or snap.cur_sig is None or cur_st.st_mtime_ns != snap.cur_sig
        if not (new_changed or cur_changed or ul_sig != snap.uidlist_sig):
            return
        new_sig, cur_sig = _trusted(new_st), _trusted(cur_st)
        before = (snap.new_sig, snap.cur_sig, snap.uidlist_sig, snap.next_uid)
        files = snap.files  # replaced (never mutated) when anything changes
        if new_changed:
            entries = [n for n in os.listdir(self._new) if not n.startswith(".")]
            if entries:
                self._take_new(entries)
                cur_changed = True
        if ul_sig != snap.uidlist_sig:
            self._uidlist.refresh()
            if not self._uidlist.uidvalidity:
                with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
                    self._locked_refresh()
            if self._uidlist.uidvalidity != snap.uidvalidity:
                raise MailError(
                    ErrorKind.NONEXISTENT,
                    "Mailbox was recreated",
                    detail=f"uidvalidity changed {snap.uidvalidity} -> "
                    f"{self._uidlist.uidvalidity} in {self.path}",
                )
        if cur_changed:
            _extend(seen, self._scan_cur())
            self._clean_tmp()
        snap = self._snap
        snap.new_sig, snap.cur_sig = new_sig, cur_sig
        if self._uidlist.sig is not None:
            snap.uidlist_sig = self._uidlist.sig
        # else: never read because unchanged since the snapshot; keep its signature
        snap.next_uid = max(snap.next_uid, self._uidlist.next_uid)
        after = (snap.new_sig, snap.cur_sig, snap.uidlist_sig, snap.next_uid)
        if before != after or snap.files is not files:
            self._dirty = True
        # else: a listing within MTIME_TRUST of a change found nothing new;
        # rewriting an identical index would cost O(n) per command meanwhile

    # ------------------------------------------------------------ modseqs
    @contextlib.contextmanager
    def _ms_lock(self) -> Iterator[None]:
        """The modseq lock: every mailsuite writer renames, adds and removes
        files in ``cur/`` only while holding it (not reentrant)."""
        with DotLock(self._ms.lock_path, clock=self._ctx.clock):
            self._holding_ms = True
            try:
                yield
            finally:
                self._holding_ms = False

    def _note_touched(self, touched: set[int] | None) -> None:
        """Messages whose modseq someone else raised: report as flag changes."""
        if touched is None:
            self._flagged.update(self._snap.uids)
        else:
            self._flagged.update(u for u in touched if self._pos(u) is not None)

    def _unaccounted(self, seen: Seen) -> tuple[dict[int, str], list[int]]:
        """What ``seen`` holds that the modseq log does not know yet."""
        ms, files = self._ms, self._snap.files
        changes: dict[int, str] = {}
        for uids, renamed in ((seen[0], True), (seen[2], False)):
            for uid in uids:
                pos = self._pos(uid)
                if pos is not None:
                    tail = tail_of(files[pos])
                    if not ms.accounts_for(uid, tail, renamed):
                        changes[uid] = tail
        return changes, [u for u in seen[1] if u not in ms.expunged]

    def _reconcile(self, seen: Seen, ms_held: bool) -> None:
        """Give a modseq to changes found on disk that the log does not know
        (another process's rename, removal or delivery); once per change,
        whichever view sees it first."""
        if self._ms.valid:
            changes, gone = self._unaccounted(seen)
            if not changes and not gone:
                return
        if ms_held:
            self._record_seen_locked(seen)
            return
        with self._ms_lock():
            touched = self._ms.refresh(self.uidvalidity)
            if self._ms.valid and (touched is None or touched):
                # Records written since our listing may belong to renames the
                # listing missed: list again while no mailsuite writer can act.
                self._note_touched(touched)
                _extend(seen, self._scan_cur())
            self._record_seen_locked(seen)

    def _record_seen_locked(self, seen: Seen) -> None:
        if not self._ms.valid:
            self._create_modseqs_locked()
        changes, gone = self._unaccounted(seen)
        if changes or gone:
            self._ms.record_locked(changes, gone)
            self._dirty = True

    def _create_modseqs_locked(self) -> None:
        """(Re)create a missing or corrupt modseq file: every message the view
        shows gets the new base, which is above anything handed out before."""
        snap = self._snap
        created = max(snap.next_uid - 1, snap.uids[-1] if snap.uids else 0)
        self._ms.create_locked(self.uidvalidity, created, snap.highest_modseq)
        self._dirty = True

    def _sync_log_locked(self) -> None:
        """Read what other writers logged (modseq lock held) without listing
        ``cur/``: the names of messages they renamed are followed one
        ``stat`` each, so the view never shows a modseq newer than its flags."""
        touched = self._ms.refresh(self.uidvalidity)
        if not self._ms.valid:
            self._create_modseqs_locked()
        elif touched is None:
            self._note_touched(None)
            self._refresh(force_cur=True, ms_held=True)
        elif touched:
            self._note_touched(touched)
            if not self._follow(touched):
                self._refresh(force_cur=True, ms_held=True)

    def _follow(self, touched: set[int]) -> bool:
        """Update the names of ``touched`` messages to their logged names;
        False if one is not where the log says (list ``cur/`` then)."""
        snap = self._snap
        files: list[str] | None = None
        for uid in touched:
            pos = self._pos(uid)
            tail = self._ms.recorded_tail(uid)
            if pos is None or tail is None or uid in self._ms.expunged:
                continue  # a removal: the next scan drops it
            name = snap.files[pos] if files is None else files[pos]
            if tail_of(name) == tail:
                continue
            new = f"{name.partition(':')[0]}:{tail}"
            if not os.path.exists(f"{self._cur_s}/{new}"):
                return False
            if files is None:
                files = list(snap.files)
            files[pos] = new
        if files is not None:
            snap.files = files
            self._by_name = self._by_base = None
            self._dirty = True
        return True

    def _record_new(self, items: dict[int, str]) -> None:
        """Modseqs for messages this view just added (append, copy)."""
        with self._lock, self._ms_lock():
            self._sync_log_locked()
            unknown = {
                u: t for u, t in items.items() if not self._ms.accounts_for(u, t, renamed=False)
            }
            if unknown:
                self._ms.record_locked(unknown, ())
                self._dirty = True

    def highest_modseq(self) -> int:
        """HIGHESTMODSEQ (RFC 7162 §3.1.2.1) as of the last sync or own change.

        Never covers an expunge this view has not reported yet through
        ``sync()`` (RFC 7162 §3.2: HIGHESTMODSEQ must stay below a delayed
        expunge's modseq): it is then that expunge's modseq minus one.
        """
        with self._lock:
            ms = self._ms
            high = ms.highest
            if high == self._reported_high:
                return high
            for uid, mod in reversed(ms.expunged.items()):  # newest first
                if mod <= self._reported_high:
                    break
                if uid in self._expunged or self._pos(uid) is not None:
                    high = min(high, mod - 1)
            return high

    def expunged_at(self, uids: Iterable[int]) -> dict[int, int]:
        """The modseq at which each of ``uids`` was expunged, for those the
        log still holds (for the HIGHESTMODSEQ rule of RFC 7162 §3.2 when the
        IMAP layer delays EXPUNGE/VANISHED responses)."""
        with self._lock:
            x = self._ms.expunged
            return {u: x[u] for u in uids if u in x}

    def modseq(self, uid: int) -> int:
        """One message's modseq (RFC 7162 §3.1.4.2); raises EXPUNGED."""
        with self._lock:
            if self._pos(uid) is None:
                raise MailError(ErrorKind.EXPUNGED)
            return self._ms.modseq_of(uid)

    def changed_since(self, modseq: int) -> list[int]:
        """UIDs (ascending) whose modseq is greater than ``modseq`` (RFC 7162
        §3.1.4.1 CHANGEDSINCE, §3.1.5 SEARCH MODSEQ)."""
        with self._lock:
            ms = self._ms
            if modseq < ms.base:
                return list(self._snap.uids)
            return sorted(u for u in ms.changed_uids(modseq) if self._pos(u) is not None)

    def expunged_since(self, modseq: int) -> tuple[list[int], bool]:
        """UIDs expunged at a modseq greater than ``modseq`` and whether the
        answer is complete (RFC 7162 §3.2.5, §5.3; see modseq.py).  UIDs the
        view still shows (their removal not yet seen by a sync) are left out."""
        with self._lock:
            uids, complete = self._ms.expunged_since(modseq)
            return [u for u in uids if self._pos(u) is None], complete

    def _take_new(self, entries: list[str]) -> None:
        """Move ``new/`` files into ``cur/`` and give them UIDs (uidlist lock held)."""
        with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
            self._locked_refresh()
            bases = []
            for name in entries:
                base, info = split_name(name)
                target = name if info is not None else base + ":2,"
                try:
                    os.rename(self._new / name, self._cur / target)
                except FileNotFoundError:
                    continue  # another process moved it
                bases.append(base)
            self._assign_locked(bases)

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

    def _listing(self) -> set[str]:
        return {n for n in os.listdir(self._cur) if not n.startswith(".")}

    def _scan_cur(self) -> Seen:
        """List ``cur/`` and apply what changed; returns the UIDs seen
        (renamed, removed, added) for :meth:`_reconcile`."""
        snap = self._snap
        listing = self._listing()
        old = set(snap.files)
        gone = old - listing
        appeared = listing - old
        if gone and {split_name(n)[0] for n in gone} - {split_name(n)[0] for n in appeared}:
            # readdir racing with a rename can miss the file under both names;
            # never call a message removed on such a listing: list again while
            # no mailsuite writer can rename (Dovecot does not take our lock,
            # so against it this narrows the race rather than closing it).
            if self._holding_ms:
                listing = self._listing()
            else:
                with self._ms_lock():
                    listing = self._listing()
            gone = old - listing
            appeared = listing - old
        if not gone and not appeared:
            return ([], [], [])
        by_base = self._base_map()
        new_names: dict[int, str] = {}
        removed: set[int] = set()
        fresh: dict[str, str] = {}
        for name in gone:
            removed.add(by_base[split_name(name)[0]])
        for name in appeared:
            base = split_name(name)[0]
            pos = by_base.get(base)
            if pos is not None and pos in removed:
                removed.discard(pos)
                new_names[pos] = name
            elif pos is None:
                if base in fresh:
                    name = self._resolve_duplicate(base, fresh[base], name)
                fresh[base] = name
            else:  # a second file with a base we already show
                self._resolve_duplicate(base, self._snap.files[pos], name)
        renamed = [
            snap.uids[p] for p, n in new_names.items() if tail_of(n) != tail_of(snap.files[p])
        ]
        gone_uids = [snap.uids[p] for p in removed]
        added = self._new_messages(fresh)
        self._apply(removed, new_names, added)
        return (renamed, gone_uids, [a[0] for a in added])

    def _resolve_duplicate(self, base: str, first: str, second: str) -> str:
        """Two files share one base: give the second a new base (it gets its own UID)."""
        newbase = self._ctx.names.new(self._ctx.clock())
        size = vsize_from_base(base)
        if size is not None:
            newbase += f",S={size},W={size}"
        info = split_name(second)[1]
        try:
            os.rename(self._cur / second, self._cur / f"{newbase}:2,{info or ''}")
        except FileNotFoundError:
            pass
        return first

    def _new_messages(self, fresh: dict[str, str]) -> list[tuple[int, str, int, float]]:
        if not fresh:
            return []
        self._uidlist.refresh()
        if any(b not in self._uidlist.by_base for b in fresh):
            with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
                self._locked_refresh()
                self._assign_locked(list(fresh))
        out = []
        seen: set[int] = set(self._snap.uids)
        pending = dict(fresh)
        for _attempt in range(4):
            moved: list[str] = []
            for base, name in pending.items():
                uid = self._uidlist.by_base.get(base)
                if uid is None or uid in seen:
                    continue
                try:
                    size, mtime = self._measure(name, base)
                except FileNotFoundError:
                    moved.append(base)  # renamed by a flag change meanwhile, or removed
                    continue
                seen.add(uid)
                out.append((uid, name, size, mtime))
            if not moved:
                break
            # Follow the renames: a message another session re-flagged between
            # our readdir and our stat is still there under a new name.
            current = {split_name(n)[0]: n for n in self._listing()}
            pending = {b: current[b] for b in moved if b in current}
        out.sort()
        return out

    def _measure(self, name: str, base: str) -> tuple[int, float]:
        path = f"{self._cur_s}/{name}"
        vsize = vsize_from_base(base)
        if vsize is not None:
            return vsize, os.stat(path).st_mtime
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            return vsize_of_file(fd, st.st_size), st.st_mtime
        finally:
            os.close(fd)

    def _apply(
        self,
        removed: set[int],
        renamed: dict[int, str],
        added: list[tuple[int, str, int, float]],
    ) -> None:
        snap = self._snap
        files = list(snap.files)
        for pos, name in renamed.items():
            if split_name(files[pos])[1] != split_name(name)[1]:
                self._flagged.add(snap.uids[pos])
            files[pos] = name
        cols: list[list[Any]] = [snap.uids, files, snap.sizes, snap.mtimes]
        if removed:
            self._expunged.update(snap.uids[p] for p in removed)
            self._cache.forget([split_name(files[p])[0] for p in removed])
            keep = [i for i in range(len(files)) if i not in removed]
            cols = [[c[i] for i in keep] for c in cols]
        if added:
            added.sort()
            self._added.update(a[0] for a in added)
            last = cols[0][-1] if cols[0] else 0
            cols = [c + [a[k] for a in added] for k, c in enumerate(cols)]
            if added[0][0] < last:
                order = sorted(range(len(cols[0])), key=cols[0].__getitem__)
                cols = [[c[i] for i in order] for c in cols]
        snap.uids, snap.files, snap.sizes, snap.mtimes = cols
        self._by_name = self._by_base = None

    def _base_map(self) -> dict[str, int]:
        if self._by_base is None:
            self._by_base = {n.partition(":")[0]: i for i, n in enumerate(self._snap.files)}
        return self._by_base

    def _clean_tmp(self) -> None:
        now = time.time()
        if now - self._tmp_cleaned < 3600:
            return
        self._tmp_cleaned = now
        try:
            names = os.listdir(self._tmp)
        except FileNotFoundError:
            return
        for name in names:
            try:
                if now - os.stat(self._tmp / name).st_mtime > TMP_MAX_AGE:
                    os.unlink(self._tmp / name)
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                continue

    def _save(self) -> None:
        if getattr(self, "_dirty", False):
            self._dirty = False
            self._snap.highest_modseq = max(self._snap.highest_modseq, self._ms.highest)
            try:
                idx.save_snapshot(self.path, self._snap)
            except OSError:
                pass  # a cache: the next open rebuilds it

    # ------------------------------------------------------------------ reading
    def uidnext(self) -> int:
        return self._snap.next_uid

    def messages(self) -> MessageList:
        """The listing as of the last sync or own change: a lazy, read-only
        sequence that later changes of this view do not alter (modseqs are
        fixed now; flags come from the file names of this snapshot), safe to
        read from any thread.  O(1) apart from copying the modseq overlay."""
        with self._lock:
            snap = self._snap
            flags_of = partial(_cached_flags, self._flag_cache, self._keywords)
            return MessageList(
                snap.uids, snap.files, snap.sizes, snap.mtimes, flags_of, self._ms.frozen()
            )

    def uids(self) -> Sequence[int]:
        """The UIDs known at the last sync, ascending (cheaper than ``messages()``)."""
        return self._snap.uids

    def defined_keywords(self) -> list[str]:
        """The keywords ``dovecot-keywords`` defines as of the last sync (a
        superset of those in use; empty means no message has a keyword)."""
        return [k for k in self._keywords.names if k is not None]

    def _flags_of_name(self, name: str) -> frozenset[str]:
        return _cached_flags(self._flag_cache, self._keywords, name)

    def _pos(self, uid: int) -> int | None:
        uids = self._snap.uids
        i = bisect.bisect_left(uids, uid)
        return i if i < len(uids) and uids[i] == uid else None

    def info(self, uid: int) -> MessageInfo:
        """The MessageInfo of one UID; raises EXPUNGED."""
        pos = self._pos(uid)
        if pos is None:
            raise MailError(ErrorKind.EXPUNGED)
        return self.messages()[pos]

    def _path_of(self, uid: int) -> tuple[int, str]:
        pos = self._pos(uid)
        if pos is None:
            raise MailError(ErrorKind.EXPUNGED)
        return pos, f"{self._cur_s}/{self._snap.files[pos]}"  # str: no pathlib per read

    def open_message(self, uid: int) -> IO[bytes]:
        with self._lock:
            for attempt in range(2):
                pos, path = self._path_of(uid)
                try:
                    f = open(path, "rb")  # noqa: SIM115
                except FileNotFoundError:
                    if attempt:
                        raise MailError(ErrorKind.EXPUNGED) from None
                    self._refresh(force_cur=True)
                    continue
                if os.fstat(f.fileno()).st_size == self._snap.sizes[pos]:
                    return f
                return crlf_copy(f)
        raise MailError(ErrorKind.EXPUNGED)

    def header_end(self, uid: int) -> int:
        """Offset just past the blank line ending the header (CRLF bytes)."""
        return int(self._parsed(uid)["hdr_end"])

    def structure(self, uid: int) -> Any:
        """The MIME structure from ``mailsuite.mime.structure`` (cached in the index).

        Raises EXPUNGED, or INTERNAL when the MIME package is not installed.
        """
        try:
            from mailsuite.mime.structure import Part  # type: ignore[import-not-found]
        except ImportError:
            raise MailError(
                ErrorKind.INTERNAL, detail="mailsuite.mime.structure missing"
            ) from None
        return Part.from_data(self._parsed(uid)["structure"])

    def _parsed(self, uid: int) -> dict[str, Any]:
        with self._lock:
            pos, _ = self._path_of(uid)
            base = split_name(self._snap.files[pos])[0]
        data = self._cache.get(base, STRUCTURE_VERSION)
        if isinstance(data, dict) and "hdr_end" in data:
            return data
        with self.open_message(uid) as f:
            raw = f.read()
        data = {"hdr_end": _header_end(raw), "structure": _parse_structure(raw)}
        self._cache.put(base, STRUCTURE_VERSION, data)
        return data

    def pop3_uidl(self, uid: int) -> str:
        """Dovecot's default ``%08Xu%08Xv``: UID and UIDVALIDITY in hex (RFC 1939 §7)."""
        if self._pos(uid) is None:
            raise MailError(ErrorKind.EXPUNGED)
        return f"{uid:08X}{self.uidvalidity:08X}"

    # ------------------------------------------------------------------ flags
    def _letters(self, flags: Iterable[str], create: bool) -> set[str]:
        letters: set[str] = set()
        keywords: list[str] = []
        for flag in flags:
            flag = validate_flag(flag)
            if flag == "\\Recent":
                continue
            letter = FLAG_TO_LETTER.get(flag.lower())
            if letter is not None:
                letters.add(letter)
            else:
                keywords.append(flag)
        if keywords:
            if create:
                letters.update(self._keywords.letters_for(keywords).values())
            else:
                self._keywords.refresh()
                letters.update(x for k in keywords if (x := self._keywords.letter_of(k)))
        return letters

    def store_flags(
        self, uids: Iterable[int], flags: Iterable[str], mode: str
    ) -> dict[int, frozenset[str]]:
        """Unconditional STORE; returns the new flags of the messages that exist."""
        done = self.store_flags_conditional(uids, flags, mode)
        return {uid: fl for uid, (fl, _) in done.messages.items()}

    def store_flags_conditional(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """STORE (RFC 3501 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

        ``mode`` is "set", "add" or "remove".  Runs under the modseq lock, so
        the test and the change are atomic against other mailsuite views and
        processes (not against Dovecot, which does not take that lock; a
        foreign rename found on the way is recorded with this call's modseq).
        """
        if mode not in ("set", "add", "remove"):
            raise MailError(ErrorKind.BAD_INPUT, "Invalid flag change")
        with self._lock:
            letters = self._letters(flags, create=mode != "remove")
            with self._ms_lock():
                self._sync_log_locked()
                passed, changed, modified = self._store_locked(
                    dict.fromkeys(uids), letters, mode, unchanged_since
                )
            # No index save here: it costs ~25 ms on 100k messages and buys
            # nothing (cur/ changed, so the next open lists it anyway); the
            # next sync() or expunge() saves.
            if changed:
                self._ctx.publish(self.name, "flags", changed)
            get = self._ms.modseq_of
            return StoreResult({u: (fl, get(u)) for u, fl in passed.items()}, changed, modified)

    def _store_locked(
        self, uids: Iterable[int], letters: set[str], mode: str, unchanged_since: int | None
    ) -> tuple[dict[int, frozenset[str]], list[int], list[int]]:
        ms = self._ms
        passed: dict[int, frozenset[str]] = {}
        changed: list[int] = []
        modified: list[int] = []
        record: dict[int, str] = {}
        old_files = self._snap.files
        files = list(old_files)
        moved: set[int] = set()

        def on_moved(uid: int, found: str) -> bool:
            """The file moved under us: a foreign change the log lacks fails
            the UNCHANGEDSINCE test (and gets this call's modseq)."""
            moved.add(uid)
            tail = tail_of(found)
            if unchanged_since is None or ms.accounts_for(uid, tail, renamed=True):
                return True
            record[uid] = tail
            modified.append(uid)
            return False

        for uid in uids:
            pos = self._pos(uid)
            if pos is None:
                continue
            if unchanged_since is not None and ms.modseq_of(uid) > unchanged_since:
                modified.append(uid)
                continue
            name = self._rename_flags(files, pos, letters, mode, uid, on_moved)
            if name is None:
                continue
            if name != old_files[pos]:
                changed.append(uid)
                tail = tail_of(name)
                # our own rename is new to the log; a moved file may be known
                if uid not in moved or not ms.accounts_for(uid, tail, renamed=True):
                    record[uid] = tail
            passed[uid] = self._flags_of_name(name)
        if record:
            ms.record_locked(record, ())
        if changed or record:
            self._snap.files = files
            self._by_name = self._by_base = None
            self._dirty = True
        return passed, sorted(changed), sorted(modified)

    def _rename_flags(
        self,
        files: list[str],
        pos: int,
        letters: set[str],
        mode: str,
        uid: int = 0,
        moved: Callable[[int, str], bool] | None = None,
    ) -> str | None:
        """Rename one file to its new flags; follows a rename by another process
        once (``moved(uid, found_name)`` False: leave it, return None)."""
        name: str | None = files[pos]
        for attempt in range(2):
            if name is None:
                return None
            if attempt and moved is not None and not moved(uid, name):
                files[pos] = name
                return None
            base, info = split_name(name)
            have = set(info or "")
            if mode == "set":
                want = {c for c in have if not known_letter(c, self._keywords)} | letters
            elif mode == "add":
                want = have | letters
            else:
                want = have - letters
            new_info = build_info(want)
            if info == new_info:
                files[pos] = name
                return name
            new_name = f"{base}:2,{new_info}"
            try:
                os.rename(f"{self._cur_s}/{name}", f"{self._cur_s}/{new_name}")
            except FileNotFoundError:
                name = self._find_base(base)
                continue
            files[pos] = new_name
            return new_name
        return None

    def _find_base(self, base: str) -> str | None:
        """The current name of a file whose flags another process changed."""
        for name in os.listdir(self._cur):
            if name.partition(":")[0] == base:
                return name
        return None

    # ------------------------------------------------------------------ expunge
    def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        """Remove ``\\Deleted`` messages; they are logged with one new modseq
        (for VANISHED, RFC 7162 §3.2.7) under the modseq lock."""
        with self._lock:
            wanted = None if uids is None else set(uids)
            removed: set[int] = set()
            freed = 0
            with self._ms_lock():
                self._sync_log_locked()
                snap = self._snap
                for pos, name in enumerate(snap.files):
                    uid = snap.uids[pos]
                    if wanted is not None and uid not in wanted:
                        continue
                    info = split_name(name)[1] or ""
                    if "T" not in info:
                        continue
                    if self._unlink(name):
                        removed.add(pos)
                        freed += snap.sizes[pos]
                if not removed:
                    self._save()
                    return []
                done = sorted(snap.uids[p] for p in removed)
                self._ctx.syncer.sync(self._cur)
                self._ms.record_locked({}, done)
            self._ctx.quota.add(-freed, -len(removed))
            pending = set(self._expunged)
            self._apply(removed, {}, [])
            self._expunged = pending  # our own expunges are not reported by sync()
            self._dirty = True
            self._save()
            self._ctx.publish(self.name, "expunged", done)
            return done

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(self._cur / name)
            return True
        except FileNotFoundError:
            base, _ = split_name(name)
            current = self._find_base(base)
            if current is None or "T" not in (split_name(current)[1] or ""):
                return False
            try:
                os.unlink(self._cur / current)
                return True
            except FileNotFoundError:
                return False

    # ------------------------------------------------------------------ adding
    def append(
        self,
        source: IO[bytes],
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int:
        with self._lock:
            letters = self._letters(flags, create=True)
        tmp = self._tmp / self._ctx.names.new(self._ctx.clock())
        size = _write_crlf(source, tmp)
        try:
            self._ctx.quota.check(size)
            when = internaldate.timestamp() if internaldate else self._ctx.clock()
            os.utime(tmp, (when, when))
            base = self._ctx.names.new(self._ctx.clock(), size)
            os.rename(tmp, self._cur / f"{base}:2,{build_info(letters)}")
        except BaseException:
            _unlink_quiet(tmp)
            raise
        self._ctx.syncer.sync(self._cur)
        uid = self.assign_uids([base])[base]
        self._record_new({uid: "2," + build_info(letters)})
        self._ctx.quota.add(size, 1)
        self._ctx.publish(self.name, "added", [uid])
        return uid

    def assign_uids(self, bases: list[str]) -> dict[str, int]:
        """UIDs for files already durable in ``cur/`` (takes the uidlist lock)."""
        with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
            self._locked_refresh()
            self._assign_locked(bases)
            return {b: self._uidlist.by_base[b] for b in bases}

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

    def _place_copy(self, src: MaildirMailbox, name: str, vsize: int) -> tuple[str, str] | None:
        """Link (or copy) one message of ``src`` into our ``cur/``; returns its
        new base and name tail."""
        info = split_name(name)[1] or ""
        keywords = [k for c in info if "a" <= c <= "z" and (k := src._keywords.flag_of(c))]
        letters = {c for c in info if not "a" <= c <= "z"}
        if keywords:
            letters |= set(self._keywords.letters_for(keywords).values())
        path = src._cur / name
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        base = self._ctx.names.new(self._ctx.clock())
        base += f",S={st.st_size},W={vsize}"
        tmp = self._tmp / base
        try:
            os.link(path, tmp)
        except FileNotFoundError:
            return None
        except OSError:
            with open(path, "rb") as f:
                _write_raw(f, tmp)
            os.utime(tmp, (st.st_mtime, st.st_mtime))
        os.rename(tmp, self._cur / f"{base}:2,{build_info(letters)}")
        return base, "2," + build_info(letters)

    def close(self) -> None:
        """Release the index cache connection (the view stays usable)."""
        self._cache.close()


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


def _header_end(raw: bytes) -> int:
    if raw.startswith(b"\r\n"):
        return 2
    i = raw.find(b"\r\n\r\n")
    return len(raw) if i < 0 else i + 4


def _parse_structure(raw: bytes) -> Any:
    try:
        from mailsuite.mime.structure import parse_message
    except ImportError:
        return None
    return parse_message(raw).to_data()


def _write_crlf(source: IO[bytes], path: Path) -> int:
    """Copy ``source`` into a new file with CRLF line ends, fsync it; return its size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    norm = CrlfNormalizer()
    try:
        while chunk := source.read(CHUNK):
            size += _write_all(fd, norm.feed(chunk))
        size += _write_all(fd, norm.flush())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quiet(path)
        raise
    os.close(fd)
    return size


def _write_raw(source: IO[bytes], path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while chunk := source.read(CHUNK):
            _write_all(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_ARRIVAL = re.compile(r"^(\d+)\.(?:[^.]*?M(\d+))?")


def _arrival_key(base: str) -> tuple[int, int, str]:
    """Sort key of a maildir base name: seconds, microseconds, then the name."""
    m = _ARRIVAL.match(base)
    if m is None:
        return (0, 0, base)
    return (int(m.group(1)), int(m.group(2) or 0), base)


def _extend(seen: Seen, more: Seen) -> None:
    for have, extra in zip(seen, more, strict=True):
        have.extend(extra)
