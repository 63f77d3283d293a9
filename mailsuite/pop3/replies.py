"""Mapping typed errors to POP3 replies (the protocol edge, DESIGN.md §4.4).

Response codes: RFC 2449 §8 ([LOGIN-DELAY], [IN-USE]) and RFC 3206
([SYS/TEMP], [SYS/PERM], [AUTH]).  Only ``MailError.public_text`` reaches
the client; exception text and paths go to the log.
"""

from __future__ import annotations

from mailsuite.errors import ErrorKind, MailError

_CODES = {
    ErrorKind.AUTH_FAILED: "AUTH",
    ErrorKind.DISABLED: "AUTH",
    ErrorKind.THROTTLED: "SYS/TEMP",
    ErrorKind.TEMPORARY: "SYS/TEMP",
    ErrorKind.IN_USE: "IN-USE",
    ErrorKind.INTERNAL: "SYS/PERM",
    ErrorKind.NONEXISTENT: "SYS/PERM",
    ErrorKind.OVER_QUOTA: "SYS/TEMP",
}

INTERNAL_ERROR = "-ERR [SYS/TEMP] Internal server error"
UPDATE_FAILED = "-ERR [SYS/TEMP] Some deleted messages not removed"


def error_line(err: MailError) -> str:
    """``-ERR [CODE] text`` for ``err`` (no code for plain command errors)."""
    code = _CODES.get(err.kind)
    text = _clean(err.public_text)
    return f"-ERR [{code}] {text}" if code else f"-ERR {text}"


def ok(text: str = "") -> str:
    return f"+OK {text}" if text else "+OK"


def err(text: str, code: str = "") -> str:
    return f"-ERR [{code}] {text}" if code else f"-ERR {text}"


def multiline(first: str, lines: list[str]) -> bytes:
    """A whole multi-line reply (RFC 1939 §3); ``lines`` never start with "."
    except where stuffing applies, which is done here."""
    body = [first] + [("." + s) if s.startswith(".") else s for s in lines] + ["."]
    return ("\r\n".join(body) + "\r\n").encode("utf-8")


def _clean(text: str) -> str:
    """One line, no CR/LF/NUL: public texts must not split a reply."""
    return "".join(ch if ch >= " " else " " for ch in text)[:200]
