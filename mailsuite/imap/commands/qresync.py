"""Quick resynchronisation on SELECT/EXAMINE (RFC 7162 §3.2.5).

After the usual SELECT responses, when the client's UIDVALIDITY matches,
:func:`resync` sends what ``UID FETCH known-uids (FLAGS) (CHANGEDSINCE
modseq VANISHED)`` would: first ``* VANISHED (EARLIER)`` for the known UIDs
expunged since ``modseq``, then ``FETCH (UID FLAGS MODSEQ)`` for the known
messages changed since.  Without known UIDs the client is taken to know
``1:<UIDNEXT-1>``.  Sequence match data (§3.2.5.2) narrows VANISHED to the
UIDs above the last pair that still matches.  A UIDVALIDITY mismatch sends
nothing more (the client sees the new UIDVALIDITY).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from twisted.internet import defer

from mailsuite.imap import condstore
from mailsuite.imap.commands import condstore as condstore_cmds
from mailsuite.imap.commands import fetch as fetch_cmd
from mailsuite.imap.fetchatts import FetchAtt
from mailsuite.imap.parser import SequenceSet

if TYPE_CHECKING:
    from mailsuite.imap.selected import SelectedView
    from mailsuite.imap.server import IMAPSession

_ATTS = [FetchAtt("UID"), FetchAtt("FLAGS"), FetchAtt("MODSEQ")]


def resync(s: IMAPSession, view: SelectedView, p: condstore.QresyncParams) -> defer.Deferred[None]:
    """Send VANISHED (EARLIER) and the changed flags for a QRESYNC select."""
    if p.uidvalidity != view.mailbox.uidvalidity:
        return defer.succeed(None)
    top = max(view.uidnext - 1, view.uids[-1] if view.uids else 0)
    if p.known_uids is not None:
        uid_set = p.known_uids
    elif top >= 1:
        uid_set = SequenceSet(((1, top),))
    else:
        return defer.succeed(None)  # never had a message: nothing is known
    floor = seq_match_floor(view, p.seq_match) if p.seq_match is not None else 0
    ranges = uid_set.resolve(top)
    d = condstore_cmds.vanished_earlier(s, view, uid_set, p.modseq, floor)

    def changed(_: object) -> defer.Deferred[list[tuple[int, int]]]:
        return s.run(changed_in_ranges, view, ranges, p.modseq)

    def fetch(targets: list[tuple[int, int]]) -> defer.Deferred[None]:
        if s.view is not view:
            return defer.succeed(None)
        return fetch_cmd.send_fetch(s, _ATTS, targets, False).addCallback(lambda _: None)

    return d.addCallback(changed).addCallback(fetch)


def changed_in_ranges(
    view: SelectedView, ranges: list[tuple[int, int]], since: int
) -> list[tuple[int, int]]:
    """Pool thread: (seq, uid) of the view's messages with a UID in
    ``ranges`` and a modseq above ``since``; O(changed * log n) through the
    storage's ``changed_since``, not a walk over the mailbox."""
    uids, info = view.uids, view.info
    out: list[tuple[int, int]] = []
    for uid in sorted(view.mailbox.changed_since(since)):
        i = bisect.bisect_left(uids, uid)
        if i == len(uids) or uids[i] != uid or not condstore.contains(ranges, uid):
            continue
        if view.live(uid) and info[uid].modseq > since:
            out.append((i + 1, uid))
    return out


def seq_match_floor(view: SelectedView, match: tuple[SequenceSet, SequenceSet]) -> int:
    """The UID of the last (seq, uid) pair, in order, that still matches the
    mailbox (0 if the first does not): no expunge at or below it is
    reported (§3.2.5.2)."""
    floor = 0
    seqs, uids = match
    for seq, uid in zip(condstore.set_numbers(seqs), condstore.set_numbers(uids), strict=True):
        if not 1 <= seq <= len(view.uids) or view.uids[seq - 1] != uid:
            break
        floor = uid
    return floor
