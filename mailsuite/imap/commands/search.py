"""SEARCH and UID SEARCH (RFC 3501 §6.4.4).

``[CHARSET UTF-8|US-ASCII] keys...``; other charsets answer
``NO [BADCHARSET (UTF-8 US-ASCII)]``.  Messages are matched in batches in a
pool thread so a large mailbox never blocks the reactor; results are sent
as one ``* SEARCH`` line.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap.command import Request, Result, no, ok
from mailsuite.imap.parser import (
    ParseError,
    Token,
    astring,
    is_sequence_set,
    number,
    parse_sequence_set,
)

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_BATCH = 500
_CHARSETS = ("UTF-8", "US-ASCII")


class Candidate:
    """What a search key may look at for one message (content loaded lazily)."""

    __slots__ = ("_raw", "flags", "info", "mailbox", "seq", "uid")

    def __init__(self, mailbox: Any, seq: int, uid: int, flags: frozenset[str], info: Any):
        self.mailbox = mailbox
        self.seq = seq
        self.uid = uid
        self.flags = flags
        self.info = info
        self._raw: bytes | None = None

    def raw(self) -> bytes:
        if self._raw is None:
            with self.mailbox.open_message(self.uid) as f:
                self._raw = f.read()
        return self._raw


Matcher = Callable[[Candidate], bool]


def search(s: IMAPSession, req: Request) -> Any:
    view = s.view
    assert view is not None
    args = list(req.args)
    if len(args) >= 2 and isinstance(args[0], str) and args[0].upper() == "CHARSET":
        charset = astring(args[1]).decode("ascii", "replace").upper()
        if charset not in _CHARSETS:
            return no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        args = args[2:]
    if not args:
        raise ParseError("SEARCH needs search keys")
    matcher = parse_keys(args, view)
    candidates = []
    for index, uid in enumerate(view.uids, 1):
        if view.live(uid):
            candidates.append((index, uid, view.flags(uid), view.info[uid]))
    d = defer.ensureDeferred(_run(s, view.mailbox, candidates, matcher))

    def answer(found: list[tuple[int, int]]) -> Result:
        values = [uid if req.uid else seq for seq, uid in found]
        s.untagged("SEARCH" + "".join(f" {v}" for v in values))
        return ok("SEARCH completed")

    return d.addCallback(answer)


async def _run(s: IMAPSession, mailbox: Any, candidates: list[Any], matcher: Matcher) -> list[Any]:
    found: list[tuple[int, int]] = []
    for i in range(0, len(candidates), _BATCH):
        found.extend(await s.run(_match_batch, mailbox, candidates[i : i + _BATCH], matcher))
    return found


def _match_batch(mailbox: Any, batch: list[Any], matcher: Matcher) -> list[tuple[int, int]]:
    out = []
    for seq, uid, flags, info in batch:
        c = Candidate(mailbox, seq, uid, flags, info)
        try:
            if matcher(c):
                out.append((seq, uid))
        except MailError as e:
            if e.kind not in (ErrorKind.EXPUNGED, ErrorKind.NONEXISTENT):
                raise
    return out


# -- interim key parser (replaced by mailsuite.imap.searchmatch) -----------------
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "RECENT": ("\\Recent", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
    "OLD": ("\\Recent", False),
}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def parse_keys(args: list[Token], view: Any) -> Matcher:
    keys: list[Matcher] = []
    pos = 0
    while pos < len(args):
        key, pos = _key(args, pos, view, 0)
        keys.append(key)
    return lambda c: all(k(c) for k in keys)


def _key(args: list[Token], pos: int, view: Any, depth: int) -> tuple[Matcher, int]:
    if depth > 50:
        raise ParseError("Search keys nested too deeply")
    tok = args[pos]
    if isinstance(tok, list):
        inner = parse_keys(tok, view) if tok else None
        if inner is None:
            raise ParseError("Empty search list")
        return inner, pos + 1
    if not isinstance(tok, str):
        raise ParseError("Invalid search key")
    name = tok.upper()
    if is_sequence_set(tok):
        wanted = set(view.select_seqs(parse_sequence_set(tok)))
        return (lambda c: c.seq - 1 in wanted), pos + 1
    if name == "ALL":
        return (lambda c: True), pos + 1
    if name in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[name]
        return (lambda c: (flag in c.flags) == present), pos + 1
    if name == "NEW":
        return (lambda c: "\\Recent" in c.flags and "\\Seen" not in c.flags), pos + 1
    if name == "NOT":
        inner_key, nxt = _key(args, _need(args, pos + 1), view, depth + 1)
        return (lambda c: not inner_key(c)), nxt
    if name == "OR":
        a, nxt = _key(args, _need(args, pos + 1), view, depth + 1)
        b, nxt = _key(args, _need(args, nxt), view, depth + 1)
        return (lambda c: a(c) or b(c)), nxt
    arg = args[_need(args, pos + 1)]
    nxt = pos + 2
    if name == "UID":
        wanted_uids = {view.uids[i] for i in view.select_uids(parse_sequence_set(arg))}
        return (lambda c: c.uid in wanted_uids), nxt
    if name in ("KEYWORD", "UNKEYWORD"):
        word = astring(arg).decode("ascii", "replace")
        present = name == "KEYWORD"
        return (lambda c: (word in c.flags) == present), nxt
    if name in ("LARGER", "SMALLER"):
        n = number(arg)
        if name == "LARGER":
            return (lambda c: c.info.size > n), nxt
        return (lambda c: c.info.size < n), nxt
    if name in ("BEFORE", "ON", "SINCE"):
        day = _date(arg)
        if name == "BEFORE":
            return (lambda c: c.info.internaldate.date() < day), nxt
        if name == "ON":
            return (lambda c: c.info.internaldate.date() == day), nxt
        return (lambda c: c.info.internaldate.date() >= day), nxt
    if name in ("SUBJECT", "FROM", "TO", "CC", "BCC"):
        return _header(name, astring(arg)), nxt
    if name == "HEADER":
        value = args[_need(args, pos + 2)]
        return _header(astring(arg).decode("ascii", "replace"), astring(value)), pos + 3
    if name in ("BODY", "TEXT"):
        needle = astring(arg).lower()
        if name == "TEXT":
            return (lambda c: needle in c.raw().lower()), nxt
        return (lambda c: needle in c.raw().partition(b"\r\n\r\n")[2].lower()), nxt
    raise ParseError("Unknown search key")


def _need(args: list[Token], pos: int) -> int:
    if pos >= len(args):
        raise ParseError("Missing search argument")
    return pos


def _date(tok: Token) -> datetime.date:
    text = astring(tok).decode("ascii", "replace")
    try:
        d, m, y = text.split("-")
        return datetime.date(int(y), _MONTHS.index(m.upper()) + 1, int(d))
    except ValueError:
        raise ParseError("Invalid date")


def _header(field: str, needle: bytes) -> Matcher:
    name = field.lower().encode()
    needle = needle.lower()

    def match(c: Candidate) -> bool:
        head = c.raw().partition(b"\r\n\r\n")[0]
        for line in head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").split(b"\r\n"):
            key, sep, value = line.partition(b":")
            if sep and key.strip().lower() == name and needle in value.lower():
                return True
        return False

    return match
