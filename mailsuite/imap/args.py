"""Command arguments with meaning: mailbox names, flag lists, date-times
(RFC 3501 §5.1, §2.3.2, §9 ``flag-list``, ``date-time``)."""

from __future__ import annotations

import datetime
import re

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap.parser import ParseError, Token, astring_text
from mailsuite.interfaces import SYSTEM_FLAGS

_SYSTEM = {f.upper(): f for f in SYSTEM_FLAGS}
_ATOM_BAD = set('(){%*"\\]')
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DATE_TIME_RE = re.compile(
    r"^([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$"
)
MAX_FLAGS = 100


def parse_flags(token: Token, allow_single: bool = True) -> list[str]:
    """A parenthesised flag list (or one flag when ``allow_single``).

    System flags are canonicalised (``\\seen`` -> ``\\Seen``); ``\\Recent``
    is dropped (it cannot be stored); other ``\\`` flags are an error;
    keywords keep their case.
    """
    items = token if isinstance(token, list) else [token] if allow_single else None
    if items is None:
        raise ParseError("Expected a flag list")
    if len(items) > MAX_FLAGS:
        raise ParseError("Too many flags")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise ParseError("Invalid flag")
        if item.startswith("\\"):
            upper = item.upper()
            if upper == "\\RECENT":
                continue
            if upper not in _SYSTEM:
                raise ParseError("Invalid system flag")
            flag = _SYSTEM[upper]
        else:
            if any(c in _ATOM_BAD for c in item) or "[" in item:
                raise ParseError("Invalid keyword")
            flag = item
        if flag not in out:
            out.append(flag)
    return out


def parse_date_time(value: bytes) -> datetime.datetime:
    """``"dd-Mon-yyyy hh:mm:ss +zzzz"`` as a timezone-aware datetime."""
    m = _DATE_TIME_RE.match(value.decode("ascii", "replace"))
    if m is None:
        raise ParseError("Invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month = _MONTHS.get(mon.upper())
    if month is None:
        raise ParseError("Invalid date-time")
    offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
    if sign == "-":
        offset = -offset
    try:
        return datetime.datetime(
            int(year),
            month,
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=datetime.timezone(offset),
        )
    except ValueError:
        raise ParseError("Invalid date-time")


def mailbox_name(token: Token) -> str:
    """A mailbox argument: ``INBOX`` in any case becomes ``INBOX``; 7-bit only.

    Everything else about the name is validated by the storage layer.
    """
    name = astring_text(token, "mailbox name")
    if name.upper() == "INBOX":
        return "INBOX"
    if any(ord(c) > 0x7E or ord(c) < 0x20 for c in name):
        raise MailError(ErrorKind.BAD_NAME, "Mailbox names must be modified UTF-7")
    return name
