"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), UIDPLUS APPENDUID
(RFC 4315 §3) and BINARY literal8 (RFC 3516 §4.2).

``APPEND mailbox 1*([(flags)] [date-time] literal)``: every message's
arguments are checked before anything is stored (a syntax error is ``BAD``,
an empty message ``NO``, RFC 3502 "cancel").  The messages are then stored
in order in one pool call; if one fails, the ones already stored are
removed again (flagged ``\\Deleted`` and expunged by UID), so the mailbox
ends as it was (RFC 3502 §6.3.11 "no partial appending"; another session
may briefly see them come and go).  Success answers
``[APPENDUID uidvalidity uid-set]`` with one UID per message.

The literals' sizes were checked against ``imap.max_literal_size`` and the
quota before each continuation was sent; large ones arrive spooled to files
(:class:`FileLiteral`), never whole in memory (:mod:`mailsuite.imap.reader`).
The storage stores bare LF line ends as CRLF, so sizes and sections stay exact.
"""

from __future__ import annotations

import datetime
import io
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from twisted.logger import Logger

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import responses
from mailsuite.imap.args import mailbox_name, parse_date_time, parse_flags
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, no, ok
from mailsuite.imap.parser import FileLiteral, Literal8, ParseError, Token

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_log = Logger()
_DATE_START = re.compile(rb"^[ \d]?\d-")


@dataclass(frozen=True)
class AppendMessage:
    """One message of an APPEND: its data, flags and internal date."""

    data: bytes
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None

    @property
    def size(self) -> int:
        return self.data.size if isinstance(self.data, FileLiteral) else len(self.data)

    def source(self) -> IO[bytes]:
        return self.data.file if isinstance(self.data, FileLiteral) else io.BytesIO(self.data)


def parse_messages(args: list[Token]) -> list[AppendMessage]:
    """``1*([flag-list] [date-time] literal)`` (RFC 3502 ``append-message``)."""
    out: list[AppendMessage] = []
    flags: list[str] | None = None
    date: datetime.datetime | None = None
    for arg in args:
        if isinstance(arg, list) and flags is None and date is None:
            flags = parse_flags(arg, allow_single=False)
        elif isinstance(arg, bytes) and not date and _is_date(arg):
            date = parse_date_time(arg)
        elif isinstance(arg, bytes):
            out.append(AppendMessage(arg, tuple(flags or ()), date))
            flags, date = None, None
        else:
            raise ParseError("Invalid APPEND arguments")
    if not out or flags is not None or date is not None:
        raise ParseError("APPEND needs a message literal")
    return out


def _is_date(arg: bytes) -> bool:
    """A date-time argument, not a message: the tokenizer gives quoted strings
    and literals alike, so a short string starting like ``dd-`` is taken as
    a date-time (and must parse; a message must follow it)."""
    if isinstance(arg, FileLiteral | Literal8) or len(arg) > 40:
        return False
    return _DATE_START.match(arg) is not None


def append(s: IMAPSession, req: Request) -> Any:
    """``APPEND mailbox [(flags)] [date-time] literal ...``."""
    if len(req.args) < 2:
        raise ParseError("APPEND needs a mailbox and a message literal")
    name = mailbox_name(req.args[0])
    messages = parse_messages(list(req.args[1:]))
    if any(m.size == 0 for m in messages):
        return no("Empty message", "CANNOT")
    d = s.run(_store_all, s.account, name, messages)

    def stored(result: tuple[int, list[int]]) -> Result:
        uidvalidity, uids = result
        if s.view is not None and s.view.name == name:
            s.view.dirty = True
        return ok("APPEND completed", f"APPENDUID {uidvalidity} {responses.sequence_set(uids)}")

    def failed(f: Any) -> Any:
        if f.check(MailError) and f.value.kind is ErrorKind.NONEXISTENT:
            return no("Mailbox does not exist", "TRYCREATE")
        return f

    return d.addCallbacks(stored, failed)


def _store_all(account: Any, name: str, messages: list[AppendMessage]) -> tuple[int, list[int]]:
    """Pool thread: store every message durably, or none (see the module doc)."""
    mailbox = account.open(name)
    uids: list[int] = []
    try:
        for m in messages:
            uids.append(mailbox.append(m.source(), m.flags, m.date))
    except BaseException:
        if uids:
            _remove(mailbox, uids)
        raise
    return mailbox.uidvalidity, uids


def _remove(mailbox: Any, uids: list[int]) -> None:
    """Undo the stored part of a failed MULTIAPPEND (logged if that fails too)."""
    try:
        mailbox.sync()  # the view learns its own appends at the next sync
        mailbox.store_flags(uids, ["\\Deleted"], "add")
        removed = mailbox.expunge(uids)
        if len(removed) != len(uids):
            _log.error(
                "APPEND removed {r} of {n} partly appended messages", r=len(removed), n=len(uids)
            )
    except Exception:
        _log.failure("APPEND could not remove {n} partly appended messages", n=len(uids))


COMMANDS = (Command("APPEND", append, AUTHENTICATED),)
