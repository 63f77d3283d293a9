"""CONDSTORE and QRESYNC (RFC 7162) for the IMAP session: syntax, session
state and the UID-set arithmetic of VANISHED.

Session state lives in ``session.enabled`` (``"CONDSTORE"``, ``"QRESYNC"``)
for the whole connection, and in two flags of the selected view
(``view.condstore``: unsolicited FETCH responses carry ``UID`` and
``MODSEQ``; ``view.vanished``: ``VANISHED`` replaces ``EXPUNGE``).

* :func:`enable_condstore` is called by every CONDSTORE enabling command
  (§3.1): ``ENABLE CONDSTORE|QRESYNC``, ``SELECT/EXAMINE (CONDSTORE)``,
  ``STATUS (HIGHESTMODSEQ)``, FETCH of ``MODSEQ`` or with ``CHANGEDSINCE``,
  SEARCH ``MODSEQ``, STORE ``UNCHANGEDSINCE``.  The first one with a mailbox
  selected sends ``* OK [HIGHESTMODSEQ n]``.
* HIGHESTMODSEQ (§3.1.2.1, §3.2): ``view.highest_modseq`` is the storage's
  value after the last sync or own change (:func:`after_sync` runs in the
  pool thread of every sync); ``view.known_modseq`` is the value the client
  may be told, which never covers an expunge the session still holds back
  (RFC 3501 §7.4.1 forbids EXPUNGE/VANISHED during FETCH, STORE, SEARCH).
  :func:`finish` runs before every tagged reply in a selected state: while
  expunges are held back it sends ``* OK [HIGHESTMODSEQ n]`` with ``n``
  below their modseq; when expunges were just reported it puts
  ``[HIGHESTMODSEQ n]`` in the tagged OK (§3.2.7, §3.2.9, §6).
* Parsers raise :class:`ParseError` (a tagged BAD): mod-sequences are
  1..2^63-1 (``mod-sequence-valzer`` allows 0), sets in QRESYNC must not use
  ``*``, and QRESYNC/VANISHED require ``ENABLE QRESYNC`` first (§3.2.5,
  §3.2.6).

No I/O here except :func:`after_sync`, which runs in a pool thread.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsuite.imap.command import Result
from mailsuite.imap.parser import ParseError, SequenceSet, Token, parse_sequence_set

if TYPE_CHECKING:
    from mailsuite.imap.selected import SelectedView
    from mailsuite.imap.server import IMAPSession

MAX_MODSEQ = 2**63 - 1
MAX_UID = 2**32 - 1
CONDSTORE = "CONDSTORE"
QRESYNC = "QRESYNC"

Ranges = list[tuple[int, int]]


# ---------------------------------------------------------------------------
# session state
def enable_condstore(s: IMAPSession) -> bool:
    """A CONDSTORE enabling command ran; True if this one enabled it.

    The first one with a mailbox selected announces its HIGHESTMODSEQ (§3.1).
    """
    if CONDSTORE in s.enabled:
        return False
    s.enabled.add(CONDSTORE)
    view = s.view
    if view is not None:
        view.condstore = True
        s.untagged(f"OK [HIGHESTMODSEQ {safe_modseq(view)}] Highest")
    return True


def enable_qresync(s: IMAPSession) -> bool:
    """``ENABLE QRESYNC`` (§3.2.3): implies CONDSTORE; VANISHED from now on."""
    enable_condstore(s)
    if QRESYNC in s.enabled:
        return False
    s.enabled.add(QRESYNC)
    if s.view is not None:
        s.view.vanished = True
    return True


def configure_view(s: IMAPSession, view: SelectedView) -> None:
    """A newly selected view follows what the session enabled."""
    view.condstore = CONDSTORE in s.enabled
    view.vanished = QRESYNC in s.enabled


def safe_modseq(view: SelectedView) -> int:
    """The HIGHESTMODSEQ the client may be told now (§3.2)."""
    if view.pending_expunge:
        held = view.held_modseq
        return view.known_modseq if held is None else max(view.known_modseq, held)
    return max(view.known_modseq, view.highest_modseq)


def after_sync(view: SelectedView, mailbox: Any) -> None:
    """Pool thread, after a sync was merged: the storage's HIGHESTMODSEQ and
    UIDNEXT, and the limit below expunges the view holds back."""
    view.highest_modseq = int(mailbox.highest_modseq())
    view.uidnext = int(mailbox.uidnext())
    pending = view.pending_expunge
    if not pending or not view.condstore:
        return
    at = mailbox.expunged_at(list(pending))
    if len(at) == len(pending):
        view.held_modseq = max(0, min(at.values()) - 1)
    else:  # some expunge is no longer in the log: stay at the last safe value
        view.held_modseq = view.known_modseq


def finish(s: IMAPSession, result: Result, released: bool) -> Result:
    """Before a tagged reply in selected state (after the updates were sent):
    HIGHESTMODSEQ for held-back or just-reported expunges (§3.2, §3.2.7)."""
    view = s.view
    if view is None or not view.condstore:
        return result
    if view.pending_expunge:
        if view.highest_modseq > view.known_modseq:
            s.untagged(f"OK [HIGHESTMODSEQ {safe_modseq(view)}] Expunges pending")
        return result
    if released and result.status == "OK" and result.code is None:
        return Result("OK", result.text, f"HIGHESTMODSEQ {safe_modseq(view)}")
    return result


def uses_modseq(node: Any) -> bool:
    """True if a SEARCH tree has a MODSEQ key (§3.1.5: a CONDSTORE enabling
    command whose non-empty result carries ``(MODSEQ n)``)."""
    from mailsuite.imap.searchmatch import Key, any_leaf

    return any_leaf(node, lambda k: isinstance(k, Key) and k.name == "MODSEQ")


# ---------------------------------------------------------------------------
# syntax
def parse_modseq(token: Token, allow_zero: bool = False) -> int:
    """``mod-sequence-value`` (1..2^63-1) or, with ``allow_zero``, ``-valzer``."""
    if not isinstance(token, str) or not token.isascii() or not token.isdigit():
        raise ParseError("Invalid mod-sequence")
    if len(token) > 19 or int(token) > MAX_MODSEQ or (int(token) == 0 and not allow_zero):
        raise ParseError("Invalid mod-sequence")
    return int(token)


def _nz_number(token: Token, what: str) -> int:
    if not isinstance(token, str) or not token.isascii() or not token.isdigit():
        raise ParseError(f"Invalid {what}")
    if len(token) > 10 or not 0 < int(token) <= MAX_UID:
        raise ParseError(f"Invalid {what}")
    return int(token)


def _known_set(token: Token) -> SequenceSet:
    """A sequence set without ``*`` (§7 ``known-uids``, ``known-*-set``)."""
    seqset = parse_sequence_set(token)
    if any(lo is None or hi is None for lo, hi in seqset.ranges):
        raise ParseError("'*' is not allowed here")
    return seqset


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """``QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])`` (§3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class SelectParams:
    condstore: bool = False
    qresync: QresyncParams | None = None


def parse_select_params(s: IMAPSession, token: Token) -> SelectParams:
    """The parenthesised SELECT/EXAMINE parameters (RFC 4466 §2.1)."""
    if not isinstance(token, list) or not token:
        raise ParseError("Invalid SELECT parameters")
    condstore = False
    qresync: QresyncParams | None = None
    i = 0
    while i < len(token):
        name = token[i]
        if not isinstance(name, str):
            raise ParseError("Invalid SELECT parameter")
        upper = name.upper()
        if upper == "CONDSTORE" and not condstore:
            condstore = True
            i += 1
        elif upper == "QRESYNC" and qresync is None and i + 1 < len(token):
            if QRESYNC not in s.enabled:
                raise ParseError("QRESYNC is not enabled")
            qresync = _qresync_params(token[i + 1])
            i += 2
        else:
            raise ParseError("Unknown SELECT parameter")
    return SelectParams(condstore, qresync)


def _qresync_params(token: Token) -> QresyncParams:
    if not isinstance(token, list) or not 2 <= len(token) <= 4:
        raise ParseError("Invalid QRESYNC parameters")
    uidvalidity = _nz_number(token[0], "UIDVALIDITY")
    modseq = parse_modseq(token[1])
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    rest = token[2:]
    if rest and not isinstance(rest[0], list):
        known = _known_set(rest[0])
        rest = rest[1:]
    if rest:
        pair = rest[0]
        if len(rest) != 1 or not isinstance(pair, list) or len(pair) != 2:
            raise ParseError("Invalid sequence match data")
        seqs, uids = _known_set(pair[0]), _known_set(pair[1])
        if set_size(seqs) != set_size(uids):
            raise ParseError("Sequence match sets differ in size")
        match = (seqs, uids)
    return QresyncParams(uidvalidity, modseq, known, match)


@dataclass(frozen=True, slots=True)
class FetchModifiers:
    changedsince: int | None = None
    vanished: bool = False


def parse_fetch_modifiers(s: IMAPSession, token: Token, uid: bool) -> FetchModifiers:
    """``(CHANGEDSINCE n [VANISHED])`` (§3.1.4.1, §3.2.6)."""
    if not isinstance(token, list) or not token:
        raise ParseError("Invalid FETCH modifiers")
    since: int | None = None
    vanished = False
    i = 0
    while i < len(token):
        name = token[i]
        upper = name.upper() if isinstance(name, str) else ""
        if upper == "CHANGEDSINCE" and since is None and i + 1 < len(token):
            since = parse_modseq(token[i + 1], allow_zero=True)
            i += 2
        elif upper == "VANISHED" and not vanished:
            if not uid:
                raise ParseError("VANISHED is only allowed with UID FETCH")
            if QRESYNC not in s.enabled:
                raise ParseError("QRESYNC is not enabled")
            vanished = True
            i += 1
        else:
            raise ParseError("Unknown FETCH modifier")
    if vanished and since is None:
        raise ParseError("VANISHED needs CHANGEDSINCE")
    return FetchModifiers(since, vanished)


def parse_store_modifiers(token: Token) -> int:
    """``(UNCHANGEDSINCE n)`` (§3.1.3): the one STORE modifier we know."""
    if not isinstance(token, list) or len(token) != 2:
        raise ParseError("Invalid STORE modifiers")
    name = token[0]
    if not isinstance(name, str) or name.upper() != "UNCHANGEDSINCE":
        raise ParseError("Unknown STORE modifier")
    return parse_modseq(token[1], allow_zero=True)


# ---------------------------------------------------------------------------
# UID-set arithmetic (linear in the sizes; never expands a range)
def set_size(seqset: SequenceSet) -> int:
    """How many numbers a ``*``-free set lists, duplicates counted."""
    return sum(abs((hi or 0) - (lo or 0)) + 1 for lo, hi in seqset.ranges)


def set_numbers(seqset: SequenceSet) -> Iterable[int]:
    """The numbers of a ``*``-free set in the order given (lazily)."""
    for lo, hi in seqset.ranges:
        a, b = lo or 0, hi or 0
        yield from range(a, b + 1) if a <= b else range(a, b - 1, -1)


def clip(ranges: Ranges, low: int, high: int) -> Ranges:
    """``ranges`` (sorted, disjoint) restricted to ``low..high``."""
    out = []
    for a, b in ranges:
        a, b = max(a, low), min(b, high)
        if a <= b:
            out.append((a, b))
    return out


def subtract(ranges: Ranges, present: Sequence[int]) -> Ranges:
    """``ranges`` (sorted, disjoint) minus the sorted numbers ``present``."""
    out: Ranges = []
    for lo, hi in ranges:
        i = bisect.bisect_left(present, lo)
        cur = lo
        while i < len(present) and present[i] <= hi:
            if present[i] > cur:
                out.append((cur, present[i] - 1))
            cur = present[i] + 1
            i += 1
        if cur <= hi:
            out.append((cur, hi))
    return out


def contains(ranges: Ranges, value: int) -> bool:
    """``value`` in sorted, disjoint ``ranges`` (binary search)."""
    i = bisect.bisect_right(ranges, (value, MAX_UID + 1)) - 1
    return i >= 0 and ranges[i][0] <= value <= ranges[i][1]


def ranges_text(ranges: Iterable[tuple[int, int]]) -> str:
    """``1:3,7`` for sorted, disjoint ranges."""
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def to_ranges(numbers: Iterable[int]) -> Ranges:
    """Sorted, merged ranges of some numbers (duplicates dropped)."""
    out: Ranges = []
    for n in sorted(set(numbers)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def number_set(numbers: Iterable[int]) -> str:
    """Compact ``sequence-set`` text of some numbers (MODIFIED, VANISHED)."""
    return ranges_text(to_ranges(numbers))
