"""IMAP command tokenizer and the small grammars built on it (RFC 3501 §9).

Tokens are plain Python values, so every command module (and
``mailsuite.imap.searchmatch``) can work on them without importing classes:

* ``str`` -- an atom (ASCII, 0x21-0x7E).  ``NIL`` is the atom ``"NIL"``.
  An atom may contain one bracketed part copied verbatim, spaces and
  parentheses included, so ``BODY.PEEK[HEADER.FIELDS (From To)]<0.100>`` is
  one atom (RFC 3501 §6.4.5 ``section``).
* ``bytes`` -- a string: quoted (``"a \\" b"``, escapes ``\\\\`` and ``\\"``
  only, 8-bit allowed, no CR/LF/NUL) or a literal (``{n}``, ``{n+}``
  RFC 7888).  :class:`Literal8` (a ``bytes`` subclass) for ``~{n}`` (RFC 3516);
  :class:`FileLiteral` (also a ``bytes`` subclass) for a large literal the
  session spooled to disk.
* ``list`` -- a parenthesised list of tokens.

A command arrives as *fragments*: the text of each line and, after every
line that ends in a literal announcement, that literal's bytes (the session
collects them, see :mod:`mailsuite.imap.server`).  :func:`tokenize` walks
them in one pass; nothing is quadratic.

Sequence sets (RFC 3501 §9 ``sequence-set``) are parsed in time linear in
their length and resolved with one sort (:meth:`SequenceSet.resolve`), so
8,000 ranges cost milliseconds, not seconds (DESIGN.md §2).

Errors raise :class:`ParseError`, whose text is safe to send after ``BAD``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TypeAlias

Token: TypeAlias = "str | bytes | list[Token]"

_LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}$")
_MAX_NUMBER = 4294967295
_ATOM_STOP = frozenset(b' ()"')
# atom characters (0x21-0x7E but for ( ) " [) and [ ... ] groups of 0x20-0x7E
_ATOM_RE = re.compile(rb"(?:[\x21\x23-\x27\x2a-\x5a\x5c-\x7e]+|\[[\x20-\x5c\x5e-\x7e]*\])+")
_MAX_DEPTH = 64


class ParseError(Exception):
    """Syntax error; ``str(err)`` is a public text for a ``BAD`` reply."""


class Literal8(bytes):
    """A ``~{n}`` literal (RFC 3516 §4.2): may contain NUL."""


class FileLiteral(bytes):
    """A literal the session spooled to a file (large APPEND data).

    Its ``bytes`` value is empty; ``file`` holds the data (positioned at 0,
    closed by the session after the command), ``size`` its length.  NUL was
    checked while spooling.
    """

    file: IO[bytes]
    size: int

    def __new__(cls, file: IO[bytes], size: int) -> FileLiteral:
        obj = super().__new__(cls, b"")
        obj.file = file
        obj.size = size
        return obj


@dataclass(frozen=True, slots=True)
class LiteralAnnouncement:
    """The literal announced at the end of a line: ``{size}``, ``{size+}``, ``~{size}``."""

    size: int
    non_sync: bool
    binary: bool


def literal_at_end(line: bytes) -> LiteralAnnouncement | None:
    """The literal this line announces, if it ends with one (RFC 3501 §4.3)."""
    if not line.endswith(b"}"):
        return None
    m = _LITERAL_RE.search(line)
    if m is None:
        return None
    return LiteralAnnouncement(int(m.group(2)), m.group(3) == b"+", m.group(1) == b"~")


def tokenize(fragments: Sequence[bytes]) -> list[Token]:
    """Tokens of a command given its fragments (line, literal, line, ...).

    ``fragments`` has an odd length: lines at even indices, each line but the
    last ending in the announcement of the literal that follows it.
    """
    return _Tokenizer(fragments).run()


class _Tokenizer:
    def __init__(self, fragments: Sequence[bytes]) -> None:
        self.fragments = fragments
        self.index = 0  # index of the current line fragment
        self.line = fragments[0] if fragments else b""
        self.pos = 0

    def run(self) -> list[Token]:
        top: list[Token] = []
        stack: list[list[Token]] = [top]
        while True:
            self._skip_spaces()
            if self.pos >= len(self.line):
                if self.index + 1 < len(self.fragments):
                    raise ParseError("Unexpected literal")
                break
            c = self.line[self.pos]
            if c == 0x28:  # (
                if len(stack) > _MAX_DEPTH:
                    raise ParseError("Lists nested too deeply")
                new: list[Token] = []
                stack[-1].append(new)
                stack.append(new)
                self.pos += 1
            elif c == 0x29:  # )
                if len(stack) == 1:
                    raise ParseError("Unbalanced parenthesis")
                stack.pop()
                self.pos += 1
            elif c == 0x22:  # "
                stack[-1].append(self._quoted())
            elif c == 0x7B or (c == 0x7E and self.line[self.pos + 1 : self.pos + 2] == b"{"):
                stack[-1].append(self._literal())
            else:
                stack[-1].append(self._atom())
        if len(stack) != 1:
            raise ParseError("Unbalanced parenthesis")
        return top

    def _skip_spaces(self) -> None:
        line, n = self.line, len(self.line)
        while self.pos < n and line[self.pos] == 0x20:
            self.pos += 1

    def _quoted(self) -> bytes:
        line = self.line
        out = bytearray()
        i = self.pos + 1
        n = len(line)
        while i < n:
            j = _next_special(line, i)
            out += line[i:j]
            if j >= n:
                break
            c = line[j]
            if c == 0x22:
                self.pos = j + 1
                return bytes(out)
            if c == 0x5C:  # backslash
                if j + 1 < n and line[j + 1] in (0x22, 0x5C):
                    out.append(line[j + 1])
                    i = j + 2
                    continue
                raise ParseError("Invalid escape in quoted string")
            raise ParseError("Invalid character in quoted string")
        raise ParseError("Unterminated quoted string")

    def _literal(self) -> bytes:
        m = _LITERAL_RE.match(self.line, self.pos)
        if m is None or m.end() != len(self.line):
            raise ParseError("Invalid literal")
        if self.index + 2 >= len(self.fragments):
            raise ParseError("Missing literal data")
        data = self.fragments[self.index + 1]
        size = data.size if isinstance(data, FileLiteral) else len(data)
        if size != int(m.group(2)):
            raise ParseError("Literal size mismatch")
        self.index += 2
        self.line = self.fragments[self.index]
        self.pos = 0
        if isinstance(data, FileLiteral):
            return data
        if m.group(1):
            return Literal8(data)
        if b"\x00" in data:
            raise ParseError("NUL in literal")
        return bytes(data)

    def _atom(self) -> str:
        """Printable ASCII up to a space, parenthesis or quote; ``[ ... ]``
        (sections) is taken whole, spaces included."""
        line, start = self.line, self.pos
        m = _ATOM_RE.match(line, start)
        i = m.end() if m is not None else start
        if i == start or (i < len(line) and line[i] not in _ATOM_STOP):
            self._bad_atom()  # raises the error the character-wise scan meets first
        self.pos = i
        return line[start:i].decode("ascii")

    def _bad_atom(self) -> None:
        line, i, n = self.line, self.pos, len(self.line)
        while i < n:
            c = line[i]
            if c == 0x5B:  # [ ... ] copied verbatim (sections)
                close = line.find(b"]", i)
                if close < 0:
                    raise ParseError("Missing ]")
                i = close + 1
                continue
            if c in _ATOM_STOP:
                break
            if c < 0x21 or c > 0x7E:
                raise ParseError("Invalid character in atom")
            i += 1
        if i == self.pos:
            raise ParseError("Invalid character")
        raise ParseError("Invalid character in atom")


_SPECIAL_RE = re.compile(rb'["\\\r\n\x00]')


def _next_special(line: bytes, start: int) -> int:
    m = _SPECIAL_RE.search(line, start)
    return m.start() if m else len(line)


# ---------------------------------------------------------------------------
# Helpers for command arguments
# ---------------------------------------------------------------------------
def astring(token: Token, what: str = "argument") -> bytes:
    """An ``astring`` (atom or string) as bytes."""
    if isinstance(token, str):
        return token.encode("ascii")
    if isinstance(token, bytes):
        return bytes(token)
    raise ParseError(f"Expected {what}")


def astring_text(token: Token, what: str = "argument") -> str:
    """An astring decoded as UTF-8 (mailbox names, user names)."""
    try:
        return astring(token, what).decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(f"Invalid {what}")


def nstring(token: Token) -> bytes | None:
    if token == "NIL" or (isinstance(token, str) and token.upper() == "NIL"):
        return None
    if isinstance(token, bytes):
        return bytes(token)
    raise ParseError("Expected string or NIL")


def atom(token: Token, what: str = "argument") -> str:
    if not isinstance(token, str):
        raise ParseError(f"Expected {what}")
    return token


def number(token: Token, what: str = "number") -> int:
    """A ``number`` (0 .. 2^32-1)."""
    if not isinstance(token, str) or not token.isdigit() or len(token) > 10:
        raise ParseError(f"Invalid {what}")
    value = int(token)
    if value > _MAX_NUMBER:
        raise ParseError(f"Invalid {what}")
    return value


def expect_count(args: Sequence[Token], low: int, high: int | None = None) -> None:
    """Check the number of arguments (``high`` None: same as ``low``)."""
    high = low if high is None else high
    if not low <= len(args) <= high:
        raise ParseError("Wrong number of arguments")


# ---------------------------------------------------------------------------
# Sequence sets
# ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed ``sequence-set``; ``None`` stands for ``*``."""

    ranges: tuple[tuple[int | None, int | None], ...]

    def resolve(self, star: int) -> list[tuple[int, int]]:
        """Sorted, merged, disjoint ``(low, high)`` ranges with ``*`` = ``star``.

        O(r log r) in the number of ranges.  ``star`` 0 (empty mailbox)
        turns ``*`` into 0, which callers treat as no match.
        """
        spans = []
        for lo, hi in self.ranges:
            a = star if lo is None else lo
            b = star if hi is None else hi
            if a > b:
                a, b = b, a
            spans.append((a, b))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1] + 1:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged


def parse_sequence_set(token: Token) -> SequenceSet:
    """Parse ``1,3:5,7:*``; raises :class:`ParseError`.  Linear in the length."""
    if not isinstance(token, str) or not token:
        raise ParseError("Invalid sequence set")
    ranges = []
    for element in token.split(","):
        lo, sep, hi = element.partition(":")
        a = _seq_number(lo)
        b = _seq_number(hi) if sep else a
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))


def is_sequence_set(token: Token) -> bool:
    """True if ``token`` parses as a sequence set (SEARCH keys)."""
    if not isinstance(token, str) or not token or token[0] not in "0123456789*":
        return False
    try:
        parse_sequence_set(token)
    except ParseError:
        return False
    return True


def _seq_number(text: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or len(text) > 10 or text[0] == "0":
        raise ParseError("Invalid sequence set")
    value = int(text)
    if value > _MAX_NUMBER:
        raise ParseError("Invalid sequence set")
    return value
