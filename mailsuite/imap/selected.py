"""The selected-mailbox view of one session (RFC 3501 §2.3.1, §7, DESIGN.md §4.1).

Storage speaks UIDs only.  This view owns what IMAP adds on top:

* the message sequence numbers the *client* currently believes in
  (``uids``: UIDs in sequence order, including messages another session
  expunged that this client has not been told about yet);
* ``\\Recent`` for this session;
* pending untagged updates: EXPUNGE, EXISTS/RECENT and ``FETCH (FLAGS)``,
  released by :meth:`SelectedView.updates` at the points RFC 3501 §7 allows
  (never EXPUNGE while answering FETCH, STORE or SEARCH, §7.4.1).

The view does no I/O.  The session syncs the storage mailbox in a pool
thread and merges the fresh listing there with :meth:`SelectedView.apply`
(O(n), kept off the reactor); that is safe because no command or IDLE step
reads the view while a refresh runs.  Everything else runs on the reactor
thread.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mailsuite.imap import responses
from mailsuite.imap.condstore import number_set
from mailsuite.imap.parser import ParseError, SequenceSet
from mailsuite.imap.viewinfo import InfoMap
from mailsuite.interfaces import MessageInfo

RECENT = "\\Recent"


class RecentTracker:
    """Which session first saw a message: ``\\Recent`` (RFC 3501 §2.3.2).

    One per server process (kept in ``context.extras``, not a module
    global): per (account, folder, UIDVALIDITY) the highest UID some session
    has already been told about.  A message above it is recent to the first
    read-write session that sees it, which claims it.  Sessions in *other*
    processes do not share this, so there a message may be recent in one
    session per process -- \\Recent is advisory (and gone in IMAP4rev2).
    Thread-safe: claims happen in pool threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, int], int] = {}

    def claim(self, key: tuple[str, str, int], uids: Sequence[int], take: bool) -> set[int]:
        """The UIDs of ``uids`` (ascending) nobody was told about; ``take``
        makes them ours."""
        with self._lock:
            high = self._seen.get(key, 0)
            fresh = set(uids[bisect.bisect_right(uids, high) :])
            if take and fresh:
                self._seen[key] = max(fresh)
            return fresh


class SelectedView:
    """Sequence numbers <-> UIDs, flags as the client knows them, pending updates.

    ``mailbox`` is the storage :class:`mailsuite.interfaces.Mailbox` (used
    by callers through the runner); ``readonly`` is True after EXAMINE.
    """

    def __init__(
        self,
        name: str,
        mailbox: Any,
        readonly: bool,
        messages: Sequence[MessageInfo],
        recent: Iterable[int] = (),
        claim: Callable[[Sequence[int]], set[int]] | None = None,
    ) -> None:
        self.name = name
        self.mailbox = mailbox
        self.readonly = readonly
        # ``info`` keeps the storage listing itself (lazy, no object per message)
        self.info = InfoMap(messages)
        self.uids: list[int] = list(self.info.uids)
        self.recent: set[int] = {u for u in recent if u in self.info}
        self.claim = claim  # decides which new messages are \\Recent here
        self.pending_expunge: set[int] = set()
        self.pending_flags: set[int] = set()
        self.exists_sent = len(self.uids)
        self.recent_sent = len(self.recent)
        self.dirty = False  # the change hub reported something: sync before next reply
        # RFC 7162 (mailsuite.imap.condstore): MODSEQ in unsolicited FETCH,
        # VANISHED instead of EXPUNGE; modseqs as of the last sync / own change
        self.condstore = False
        self.vanished = False
        self.highest_modseq = 0  # storage HIGHESTMODSEQ (last sync or own change)
        self.known_modseq = 0  # HIGHESTMODSEQ safe to tell (no expunge held back)
        self.held_modseq: int | None = None  # below the oldest held-back expunge
        self.uidnext = 0

    # -- lookups -----------------------------------------------------------------
    @property
    def exists(self) -> int:
        return len(self.uids)

    def flags(self, uid: int) -> frozenset[str]:
        """The flags to show the client (with ``\\Recent`` for this session)."""
        flags = self.info.flags(uid)
        return flags | {RECENT} if uid in self.recent else flags

    def flags_many(self, uids: list[int]) -> list[frozenset[str]]:
        """:meth:`flags` of many UIDs in one call; KeyError if one is unknown."""
        sets = self.info.flags_many(uids)
        recent = self.recent
        if not recent:
            return sets
        return [f | {RECENT} if u in recent else f for u, f in zip(uids, sets, strict=True)]

    def seq_of(self, uid: int) -> int:
        """1-based sequence number of ``uid`` (0 if unknown)."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def live(self, uid: int) -> bool:
        return uid in self.info and uid not in self.pending_expunge

    def select_seqs(self, seqset: SequenceSet) -> list[int]:
        """0-based indices for a message-number set; raises ParseError if out of range."""
        n = len(self.uids)
        out: list[int] = []
        for lo, hi in seqset.resolve(n):
            if lo < 1 or hi > n:
                raise ParseError("Invalid message sequence number")
            out.extend(range(lo - 1, hi))
        return out

    def select_uids(self, seqset: SequenceSet) -> list[int]:
        """0-based indices for a UID set (RFC 3501 §6.4.8: ``*`` = highest UID,
        nonexistent UIDs are ignored)."""
        star = self.uids[-1] if self.uids else 0
        out: list[int] = []
        for lo, hi in seqset.resolve(star):
            a = bisect.bisect_left(self.uids, lo)
            b = bisect.bisect_right(self.uids, hi)
            out.extend(range(a, b))
        return out

    def select(self, seqset: SequenceSet, by_uid: bool) -> list[int]:
        return self.select_uids(seqset) if by_uid else self.select_seqs(seqset)

    # -- changes -----------------------------------------------------------------
    def apply(self, messages: Sequence[MessageInfo], changed: Iterable[int] | None = None) -> None:
        """Merge a fresh storage listing: new UIDs, vanished UIDs, changed flags.

        The listing becomes the view's base (kept, not copied).  ``changed``
        (the sync's ``flags_changed``) limits the flag comparison to those
        UIDs; None compares every message.  Vanished messages stay in the
        sequence, with what the client knows of them, until :meth:`updates`
        may report them.  O(n) set operations; callers apply only after a
        sync found changes.
        """
        old, new = self.info, InfoMap(messages)
        listed = set(new.uids)
        vanished = set(self.uids).difference(listed)
        self.pending_expunge |= vanished
        for uid in self.pending_expunge:
            info = old.get(uid)
            if info is not None:
                new[uid] = info  # the client still knows it until EXPUNGE
        added = sorted(listed.difference(self.uids))
        check = listed.intersection(self.uids if changed is None else changed)
        for uid in check:
            was = old.get(uid)
            if was is None or uid in self.pending_expunge:
                continue
            now = new[uid]
            if was.flags != now.flags or (self.condstore and was.modseq != now.modseq):
                self.pending_flags.add(uid)
        self.info = new
        if added:
            added.sort()
            if self.uids and added[0] < self.uids[-1]:
                self.uids = sorted(set(self.uids).union(added))
            else:
                self.uids.extend(added)
            self.recent.update(self.claim(added) if self.claim is not None else added)

    def note_flags(self, changed: dict[int, frozenset[str]]) -> None:
        """Flags this session set itself (STORE, \\Seen by FETCH); no update pending."""
        for uid, flags in changed.items():
            old = self.info.get(uid)
            if old is not None and uid not in self.pending_expunge:
                self.info[uid] = _with_flags(old, flags)
                self.pending_flags.discard(uid)

    def note_stored(self, changed: Mapping[int, tuple[frozenset[str], int]]) -> None:
        """Flags and modseqs this session set itself or already reported
        (RFC 7162 STORE); no update pending for them."""
        for uid, (flags, modseq) in changed.items():
            old = self.info.get(uid)
            if old is not None and uid not in self.pending_expunge:
                self.info[uid] = MessageInfo(
                    uid, frozenset(flags), old.size, old.internaldate, modseq
                )
                self.pending_flags.discard(uid)
                self.highest_modseq = max(self.highest_modseq, modseq)

    def note_expunged(self, uids: Iterable[int]) -> None:
        """Messages this session expunged: reported at the end of the command."""
        for uid in uids:
            if uid in self.info:
                self.pending_expunge.add(uid)

    def updates(self, allow_expunge: bool) -> list[bytes]:
        """Untagged lines to send now, clearing what they report (RFC 3501 §7)."""
        lines: list[bytes] = []
        if allow_expunge and self.pending_expunge:
            lines.extend(self._release_expunges())
        if len(self.uids) != self.exists_sent:
            self.exists_sent = len(self.uids)
            lines.append(b"* %d EXISTS" % self.exists_sent)
        if len(self.recent) != self.recent_sent or (lines and lines[-1].endswith(b"EXISTS")):
            self.recent_sent = len(self.recent)
            lines.append(b"* %d RECENT" % self.recent_sent)
        if self.pending_flags:
            for uid in sorted(self.pending_flags):
                seq = self.seq_of(uid)
                if seq and uid not in self.pending_expunge:
                    flags = responses.flag_list(self.flags(uid)).encode()
                    if self.condstore:
                        modseq = self.info[uid].modseq
                        lines.append(
                            b"* %d FETCH (UID %d MODSEQ (%d) FLAGS %s)" % (seq, uid, modseq, flags)
                        )
                    else:
                        lines.append(b"* %d FETCH (UID %d FLAGS %s)" % (seq, uid, flags))
            self.pending_flags.clear()
        if not self.pending_expunge:
            self.known_modseq = max(self.known_modseq, self.highest_modseq)
            self.held_modseq = None
        return lines

    def _release_expunges(self) -> list[bytes]:
        gone = self.pending_expunge
        lines = []
        keep: list[int] = []
        removed = 0
        announced = self.exists_sent
        vanished: list[int] = []
        for index, uid in enumerate(self.uids):
            if uid in gone:
                if index < announced:  # never announced: vanish silently
                    if self.vanished:  # RFC 7162 §3.2.10.2
                        vanished.append(uid)
                    else:
                        lines.append(b"* %d EXPUNGE" % (index + 1 - removed))
                    removed += 1
                self.info.pop(uid, None)
                self.recent.discard(uid)
                self.pending_flags.discard(uid)
            else:
                keep.append(uid)
        self.uids = keep
        self.exists_sent -= removed
        self.recent_sent = len(self.recent)
        self.pending_expunge = set()
        if vanished:
            lines.append(b"* VANISHED " + number_set(vanished).encode())
        return lines


def _with_flags(info: MessageInfo, flags: frozenset[str]) -> MessageInfo:
    return MessageInfo(info.uid, frozenset(flags), info.size, info.internaldate, info.modseq)
