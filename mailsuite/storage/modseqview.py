"""Mod-sequences of a view (RFC 7162; part of :class:`~mailsuite.storage.mailbox.MaildirMailbox`).

:class:`ModseqMixin` answers the CONDSTORE/QRESYNC queries
(``highest_modseq``, ``modseq``, ``changed_since``, ``expunged_since``,
``expunged_at``) from the view's :class:`~mailsuite.storage.modseq.ModseqLog`
and keeps that log in step with the disk: changes another process made that
the log does not account for get a modseq (``_reconcile``), records other
writers logged are followed (``_sync_log_locked``/``_follow``), and messages
this view added get theirs (``_record_new``).

Locking: the queries take the per-view ``self._lock``.  ``*_locked`` methods
need the ``mailsuite.modseq.lock`` dot-lock held (``self._ms_lock()``);
``_reconcile`` and ``_record_new`` take it themselves unless told it is held.
The uidlist lock may be taken inside the modseq lock, never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.modseq import tail_of
from mailsuite.storage.viewbase import MailboxBase, Seen, _extend


class ModseqMixin(MailboxBase):
    """Mod-sequence queries and bookkeeping of one view."""

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
