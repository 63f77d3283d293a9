"""Building IMAP response text (RFC 3501 §7, §9) and mapping errors to codes.

* :func:`string` quotes a value when it can and uses a literal when it must
  (CR, LF, NUL, 8-bit or long values).
* :func:`error_reply` is the *one* place where a :class:`MailError` becomes
  ``NO [code] text`` (RFC 5530 codes); anything else becomes
  ``NO [SERVERBUG]`` with a generic text and the detail goes to the log.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from mailsuite.errors import ErrorKind, MailError

_QUOTE_SAFE_MAX = 1024

#: MailError kind -> (IMAP response code, use BAD instead of NO)
_CODES: dict[ErrorKind, str] = {
    ErrorKind.NONEXISTENT: "NONEXISTENT",
    ErrorKind.ALREADY_EXISTS: "ALREADYEXISTS",
    ErrorKind.BAD_NAME: "CANNOT",
    ErrorKind.OVER_QUOTA: "OVERQUOTA",
    ErrorKind.TOO_BIG: "TOOBIG",
    ErrorKind.EXPUNGED: "EXPUNGEISSUED",
    ErrorKind.IN_USE: "INUSE",
    ErrorKind.READ_ONLY: "READ-ONLY",
    ErrorKind.UNKNOWN_MAILBOX: "NONEXISTENT",
    ErrorKind.AUTH_FAILED: "AUTHENTICATIONFAILED",
    ErrorKind.THROTTLED: "UNAVAILABLE",
    ErrorKind.DISABLED: "AUTHENTICATIONFAILED",
    ErrorKind.BAD_ADDRESS: "CANNOT",
    ErrorKind.ALIAS_LOOP: "SERVERBUG",
    ErrorKind.TEMPORARY: "UNAVAILABLE",
    ErrorKind.BAD_INPUT: "CLIENTBUG",
    ErrorKind.INTERNAL: "SERVERBUG",
}


def error_reply(err: BaseException) -> str:
    """``NO [CODE] text`` for a tagged reply (without the tag)."""
    if isinstance(err, MailError):
        code = _CODES.get(err.kind, "SERVERBUG")
        text = err.public_text if err.kind is not ErrorKind.INTERNAL else "Internal error"
        return f"NO [{code}] {_one_line(text)}"
    return "NO [SERVERBUG] Internal error, try again later"


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split()) or "Failed"


def quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(value: bytes) -> bytes:
    return b"{%d}\r\n" % len(value) + value


def string(value: bytes | str) -> bytes:
    """A ``string``: quoted if safe, else a literal."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if len(value) > _QUOTE_SAFE_MAX or any(b in value for b in (b"\r", b"\n", b"\0")):
        return literal(value)
    if any(c > 0x7E for c in value):
        return literal(value)
    return quoted(value)


def nstring(value: bytes | str | None) -> bytes:
    return b"NIL" if value is None else string(value)


def astring(value: str) -> bytes:
    """A mailbox name or other astring: quoted (always safe for clients)."""
    return string(value)


def flag_list(flags: Iterable[str]) -> str:
    return "(" + " ".join(sorted(flags, key=_flag_order)) + ")"


_SYSTEM_ORDER = {
    "\\Answered": 0,
    "\\Flagged": 1,
    "\\Deleted": 2,
    "\\Seen": 3,
    "\\Draft": 4,
    "\\Recent": 5,
}


def _flag_order(flag: str) -> tuple[int, str]:
    """System flags in Dovecot's order, then \\Recent, then keywords."""
    return (_SYSTEM_ORDER.get(flag, 6), flag)


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


#: The internal date of a message that has none to show (and the filler
#: where a renderer needs a date it does not print).
EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)


def internaldate(value: datetime.datetime) -> str:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 3501 §9 ``date-time``), quoted."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    offset = value.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f'"{value.day:2d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )


def sequence_set(numbers: Iterable[int]) -> str:
    """Compact ``sequence-set`` of numbers: ``2,10:11`` (RFC 4731 ``ALL``,
    RFC 4315 uid-set).  Sorted ascending, duplicates dropped; O(n log n)."""
    parts: list[str] = []
    start = prev = -2
    for n in sorted(set(numbers)):
        if n == prev + 1:
            prev = n
            continue
        if start >= 0:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = n
    if start >= 0:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)
