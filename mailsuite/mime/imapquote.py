"""IMAP string rendering (RFC 3501 §4.3, §9 ``nstring``) for parsed values.

Values are latin-1 text (one character per byte).  The choices -- quoted
string or literal, NIL, white space clean-up of subjects and display names --
follow the reference server so that ENVELOPE and BODYSTRUCTURE answers are
byte-identical to its answers: a quoted string when the value is 7-bit
without CR/LF and has at most four characters to escape, a literal
otherwise.  A NUL byte becomes U+FFFD.  Nothing here raises.
"""

from __future__ import annotations

import re

_MAX_ESCAPES = 4
_WS_RE = re.compile("[ \t\r\n]+")
_SPECIAL_RE = re.compile('["\\\\\\x80-\\xff]')
_REPLACEMENT = "\xef\xbf\xbd"  # U+FFFD as UTF-8, in latin-1 text


def _literal(value: str) -> str:
    return f"{{{len(value)}}}\r\n{value}"


def string(value: str) -> str:
    """A quoted string or a literal; never NIL."""
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    escapes = 0
    for ch in value:
        if ch == '"' or ch == "\\":
            escapes += 1
            if escapes > _MAX_ESCAPES:
                return _literal(value)
        elif ch == "\r" or ch == "\n" or ch >= "\x80":
            return _literal(value)
    if escapes:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def nstring(value: str | None) -> str:
    """NIL for None, else :func:`string`."""
    return "NIL" if value is None else string(value)


def nstring_nolf(value: str | None) -> str:
    """Like :func:`nstring`, with CR and LF removed (a space joins lines)."""
    if value is None or ("\r" not in value and "\n" not in value):
        return nstring(value)
    out: list[str] = []
    n = len(value)
    for i, ch in enumerate(value):
        if ch != "\r" and ch != "\n":
            out.append(ch)
        elif i + 1 < n and value[i + 1] not in " \t\r\n":
            out.append(" ")
    return nstring("".join(out))


def for_humans(value: str) -> str:
    """A string with runs of white space collapsed and trimmed.

    Used for the ENVELOPE subject and display names: TAB, CR and LF count
    as white space; when anything had to change the result is a literal.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\x80")
    result = " ".join(w for w in _WS_RE.split(value) if w)
    if result == value and _SPECIAL_RE.search(value) is None:
        return f'"{value}"'
    if not result:
        return '""'
    return _literal(result)
