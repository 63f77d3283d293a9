"""STORE with mod-sequences and VANISHED (EARLIER) (RFC 7162 §3.1.3, §3.2.6).

:func:`store` is the body of every STORE and UID STORE (RFC 3501 §6.4.6):
it always goes through ``Mailbox.store_flags_conditional`` so the view
learns the new mod-sequences even before CONDSTORE is enabled.  Once it is
enabled the untagged FETCH responses carry UID and MODSEQ (§3.2.4); with
``UNCHANGEDSINCE`` a FETCH is sent for every message that passed even with
``.SILENT``, the messages that failed are listed in ``[MODIFIED set]``
(sequence numbers, or UIDs for UID STORE) and their current flags are sent
unsolicited (§3.1.3 example 10).  For ``+FLAGS``/``-FLAGS`` a message
that failed only because of a change to flags the command does not touch is
stored again with its current modseq (no spurious MODIFIED, §3.1.12) --
only when the session's copy of the message is not newer than the
UNCHANGEDSINCE value, so a change the client was told about still fails.

:func:`vanished_earlier` sends ``* VANISHED (EARLIER)`` for the UIDs of a
set that were expunged after a mod-sequence (UID FETCH VANISHED, SELECT
QRESYNC).  When the storage's expunge log no longer reaches back that far
every UID of the set that does not exist is reported (§3.2.6 note, §5.1).
UIDs the session still shows (expunges not yet reported) are left to the
plain VANISHED that follows, and UIDs at or above the view's UIDNEXT never
existed for this client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore, responses
from mailsuite.imap.command import Request, Result, no, ok
from mailsuite.imap.parser import SequenceSet

if TYPE_CHECKING:
    from mailsuite.imap.selected import SelectedView
    from mailsuite.imap.server import IMAPSession

Stored = dict[int, tuple[frozenset[str], int]]


def store(
    s: IMAPSession,
    req: Request,
    indices: list[int],
    change: tuple[list[str], str],
    silent: bool,
    since: int | None,
) -> Any:
    """STORE/UID STORE of ``change`` = (flags, mode) on the 0-based
    ``indices``; ``since`` is UNCHANGEDSINCE (None when not given)."""
    view = s.view
    assert view is not None
    if since is not None:
        condstore.enable_condstore(s)
    uids = [view.uids[i] for i in indices if view.live(view.uids[i])]
    if not uids:
        if len(indices):
            return no("Some messages were expunged", "EXPUNGEISSUED")
        return ok("STORE completed")
    flags, mode = change
    known: Stored = {}
    if since and mode != "set":  # what the client knows, for §3.1.12
        known = {u: (i.flags, i.modseq) for u in uids if (i := view.info[u]).modseq <= since}
    d = s.run(_store, view.mailbox, uids, flags, mode, since, known)

    def done(outcome: tuple[Stored, set[int], Stored]) -> Result:
        passed, changed, modified = outcome
        view.note_stored(passed)
        view.note_stored(modified)
        lines = _fetch_lines(s, view, req, uids, passed, changed, modified, silent, since)
        if lines:
            s.send(b"".join(lines))
        gone = len(passed) + len(modified) < len(indices)
        code = None
        if modified:
            numbers = modified if req.uid else [view.seq_of(u) for u in modified]
            code = "MODIFIED " + condstore.number_set(numbers)
        if gone:
            return no("Some messages were expunged", code or "EXPUNGEISSUED")
        return ok("Conditional STORE failed" if modified else "STORE completed", code)

    return d.addCallback(done)


def _fetch_lines(
    s: IMAPSession,
    view: SelectedView,
    req: Request,
    uids: list[int],
    passed: Stored,
    changed: set[int],
    modified: Stored,
    silent: bool,
    since: int | None,
) -> list[bytes]:
    """The untagged FETCH responses of one STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3)."""
    with_modseq = view.condstore
    lines = []
    for uid in uids:
        if uid in modified:
            items = [b"MODSEQ (%d)" % modified[uid][1], _flags_item(view, uid)]
        elif uid in passed:
            items = []
            if with_modseq and (since is not None or uid in changed or not silent):
                items.append(b"MODSEQ (%d)" % passed[uid][1])
            if not silent:
                items.append(_flags_item(view, uid))
            if not items:
                continue
        else:
            continue
        if req.uid or with_modseq:
            items.insert(0, b"UID %d" % uid)
        lines.append(b"* %d FETCH (%s)\r\n" % (view.seq_of(uid), b" ".join(items)))
    return lines


def _flags_item(view: SelectedView, uid: int) -> bytes:
    return b"FLAGS " + responses.flag_list(view.flags(uid)).encode()


def _store(
    mailbox: Any,
    uids: list[int],
    flags: list[str],
    mode: str,
    since: int | None,
    known: Mapping[int, tuple[frozenset[str], int]],
) -> tuple[Stored, set[int], Stored]:
    """Pool thread: the conditional store; (passed, changed, modified with
    their current flags and modseq)."""
    result = mailbox.store_flags_conditional(uids, flags, mode, since)
    passed: Stored = dict(result.messages)
    changed = set(result.changed)
    failed = list(result.modified)
    if failed:  # expunged by another session (this view has not synced yet): gone
        expunged = mailbox.expunged_at(failed)
        failed = [u for u in failed if u not in expunged]
    if failed and known:
        retry = _spurious(mailbox, failed, flags, known)
        if retry:
            limit = max(retry.values())  # any later change gets a higher modseq
            again = mailbox.store_flags_conditional(list(retry), flags, mode, limit)
            passed.update(again.messages)
            changed.update(again.changed)
            done = set(again.messages)
            failed = [u for u in failed if u not in done]
    modified: Stored = {}
    for uid in failed:
        info = _info(mailbox, uid)
        if info is not None:
            modified[uid] = (info.flags, info.modseq)
    return passed, changed, modified


def _spurious(
    mailbox: Any,
    failed: list[int],
    flags: list[str],
    known: Mapping[int, tuple[frozenset[str], int]],
) -> dict[int, int]:
    """UID -> current modseq of the messages that failed only because of
    flags the command does not touch (§3.1.12): the session's copy of the
    message is not newer than UNCHANGEDSINCE (``known`` holds only those)
    and the touched flags are still as in that copy."""
    touched = {f.casefold() for f in flags}
    out = {}
    for uid in failed:
        if uid not in known:
            continue
        info = _info(mailbox, uid)
        if info is None:
            continue
        now = {f.casefold() for f in info.flags} & touched
        if now == {f.casefold() for f in known[uid][0]} & touched:
            out[uid] = int(info.modseq)
    return out


def _info(mailbox: Any, uid: int) -> Any:
    """The storage's current MessageInfo of ``uid``, None once expunged."""
    try:
        return mailbox.info(uid)
    except MailError as e:
        if e.kind is not ErrorKind.EXPUNGED:
            raise
        return None


# ---------------------------------------------------------------------------
def changed_fetch(
    s: IMAPSession,
    view: SelectedView,
    mods: condstore.FetchModifiers,
    uid_set: SequenceSet,
    targets: list[tuple[int, int]],
) -> defer.Deferred[list[tuple[int, int]]]:
    """FETCH with CHANGEDSINCE (and VANISHED): send VANISHED (EARLIER) if
    asked, then fire with the (seq, uid) ``targets`` changed since."""
    since = mods.changedsince
    assert since is not None
    d = s.run(changed_targets, view, targets, since)
    if not mods.vanished:
        return d

    def vanished(changed: list[tuple[int, int]]) -> defer.Deferred[list[tuple[int, int]]]:
        return vanished_earlier(s, view, uid_set, since).addCallback(lambda _: changed)

    return d.addCallback(vanished)


def changed_targets(
    view: SelectedView, targets: list[tuple[int, int]], since: int
) -> list[tuple[int, int]]:
    """Pool thread: the (seq, uid) of ``targets`` whose modseq, as the
    session knows it, is above ``since`` (the storage's ``changed_since``
    narrows the set first, so unchanged messages cost nothing)."""
    changed = set(view.mailbox.changed_since(since))
    info = view.info
    return [(seq, uid) for seq, uid in targets if uid in changed and info[uid].modseq > since]


def vanished_earlier(
    s: IMAPSession, view: SelectedView, uid_set: SequenceSet, since: int, floor: int = 0
) -> defer.Deferred[None]:
    """Send ``* VANISHED (EARLIER)`` for UIDs of ``uid_set`` (above
    ``floor``) expunged with a modseq above ``since`` (§3.2.6)."""
    top = max(view.uidnext - 1, view.uids[-1] if view.uids else 0)
    ranges = condstore.clip(uid_set.resolve(top), floor + 1, top)
    if not ranges:
        return defer.succeed(None)
    d = s.run(_vanished, view.mailbox, ranges, since, list(view.uids))

    def send(text: str) -> None:
        if text and s.view is view:
            s.untagged("VANISHED (EARLIER) " + text)

    return d.addCallback(send)


def _vanished(mailbox: Any, ranges: condstore.Ranges, since: int, present: Sequence[int]) -> str:
    """Pool thread: the VANISHED (EARLIER) UID set text ('' for none)."""
    expunged, complete = mailbox.expunged_since(since)
    if complete:
        gone = condstore.to_ranges(u for u in expunged if condstore.contains(ranges, u))
    else:
        gone = ranges
    return condstore.ranges_text(condstore.subtract(gone, present))
