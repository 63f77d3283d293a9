"""Reading the disk into a view's snapshot (part of :class:`~mailsuite.storage.mailbox.MaildirMailbox`).

:class:`ScanMixin` brings ``self._snap`` up to date: moves ``new/`` into
``cur/`` and assigns UIDs (under the ``dovecot-uidlist.lock`` dot-lock, taken
here), lists ``cur/`` when its mtime (or the uidlist) changed, measures new
files and applies renames, removals and additions to the snapshot, recording
them in the view's pending sets for the next ``sync()``.  Changes the modseq
log does not know are handed to ``_reconcile`` (``modseqview.py``).

Locking: callers hold the per-view ``self._lock``.  ``_take_new`` and
``_new_messages`` take the uidlist dot-lock themselves; ``_scan_cur`` takes the
modseq dot-lock for a re-listing unless ``self._holding_ms`` says the caller
already holds it.  Directory mtimes are trusted as "nothing changed" only
when older than :data:`MTIME_TRUST` seconds when read.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.flags import split_name, vsize_from_base
from mailsuite.storage.locking import DotLock
from mailsuite.storage.messages import vsize_of_file
from mailsuite.storage.modseq import tail_of
from mailsuite.storage.viewbase import MTIME_TRUST, MailboxBase, Seen, _extend

TMP_MAX_AGE = 36 * 3600


def _trusted(st: os.stat_result) -> int | None:
    return st.st_mtime_ns if time.time() - st.st_mtime > MTIME_TRUST else None


class ScanMixin(MailboxBase):
    """Refreshes the snapshot from ``new/``, ``cur/`` and the uidlist."""

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
        # what this refresh examined (moving new/ into cur/ below changes cur/
        # again: the pre-move mtime makes the next check list it once more)
        self._seen_mtimes = (
            (new_st.st_mtime_ns, new_st.st_mtime + MTIME_TRUST),
            (cur_st.st_mtime_ns, cur_st.st_mtime + MTIME_TRUST),
        )
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
