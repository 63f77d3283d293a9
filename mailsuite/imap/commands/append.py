"""APPEND (RFC 3501 §6.3.11) with UIDPLUS APPENDUID (RFC 4315 §3) and
BINARY literal8 (RFC 3516 §4.2).

The literal's size was checked against ``imap.max_literal_size`` and the
quota before the continuation was sent; a large one arrives spooled to a
file (:class:`FileLiteral`), never whole in memory (:mod:`mailsuite.imap.server`).
The storage stores bare LF line ends as CRLF, so sizes and sections stay exact.
"""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap.args import mailbox_name, parse_date_time, parse_flags
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, no, ok
from mailsuite.imap.parser import FileLiteral, ParseError

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession


def append(s: IMAPSession, req: Request) -> Any:
    """``APPEND mailbox [(flags)] [date-time] literal``."""
    args = list(req.args)
    if len(args) < 2 or len(args) > 4:
        raise ParseError("APPEND needs a mailbox and a message literal")
    name = mailbox_name(args.pop(0))
    message = args.pop()
    if not isinstance(message, bytes):
        raise ParseError("APPEND needs a message literal")
    flags: list[str] = []
    date = None
    for arg in args:
        if isinstance(arg, list) and not flags and date is None:
            flags = parse_flags(arg, allow_single=False)
        elif isinstance(arg, bytes) and date is None:
            date = parse_date_time(arg)
        else:
            raise ParseError("Invalid APPEND arguments")
    source = message.file if isinstance(message, FileLiteral) else io.BytesIO(message)
    if (message.size if isinstance(message, FileLiteral) else len(message)) == 0:
        return no("Empty message", "CANNOT")
    d = s.run(_store, s.account, name, source, flags, date)

    def stored(result: tuple[int, int]) -> Result:
        uidvalidity, uid = result
        if s.view is not None and s.view.name == name:
            s.view.dirty = True
        return ok("APPEND completed", f"APPENDUID {uidvalidity} {uid}")

    def failed(f: Any) -> Any:
        if f.check(MailError) and f.value.kind is ErrorKind.NONEXISTENT:
            return no("Mailbox does not exist", "TRYCREATE")
        return f

    return d.addCallbacks(stored, failed)


def _store(
    account: Any, name: str, source: IO[bytes], flags: list[str], date: Any
) -> tuple[int, int]:
    """Pool thread: store durably (the storage turns bare LF into CRLF)."""
    mailbox = account.open(name)
    uid = mailbox.append(source, flags, date)
    return mailbox.uidvalidity, uid


COMMANDS = (Command("APPEND", append, AUTHENTICATED),)
