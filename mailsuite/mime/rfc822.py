"""Lenient RFC 5322 / RFC 2045 token parser for header values.

Header values are handled as ``str`` decoded from latin-1, so every byte is
one character and the original bytes come back with ``.encode("latin-1")``.

The parser follows the tolerant behaviour of the reference IMAP server
(Dovecot) closely, because IMAP clients compare our BODYSTRUCTURE and
ENVELOPE answers with what they got elsewhere: comments are skipped (the last
one is remembered for ``addr-spec (Name)``), CR/LF count as white space,
8-bit bytes are atom text, and broken input never raises -- a method returns
``-1`` and the caller decides how to carry on.  Return values mirror that
convention: ``1`` more input follows, ``0`` end of input, ``-1`` syntax error.
"""

from __future__ import annotations

import re

#: atext (RFC 5322 §3.2.3) plus every 8-bit byte.
_ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\x80-\xff"
_ATOM_RE = re.compile(f"[{_ATEXT}]+")
_ATOM_OR_DOT_RE = re.compile(f"[{_ATEXT}.]*")
#: RFC 2045 token characters: atext without "/", "=", "?", plus ".".
_TOKEN_RE = re.compile("[A-Za-z0-9!#$%&'*+\\-^_`{|}~\x80-\xff.]*")
_LWSP_RE = re.compile("[ \t\r\n]*")
ATEXT_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~"
) | frozenset(chr(c) for c in range(0x80, 0x100))


class Rfc822Parser:
    """A cursor over one header value; see the module docstring."""

    __slots__ = ("data", "end", "last_comment", "pos")

    def __init__(self, data: str, keep_comment: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: str | None = "" if keep_comment else None

    def at(self) -> str:
        """The current character, or "" at the end."""
        return self.data[self.pos] if self.pos < self.end else ""

    def skip_comment(self) -> int:
        data, end = self.data, self.end
        level = 1
        self.pos += 1
        start = self.pos
        parts: list[str] = []
        while self.pos < end:
            c = data[self.pos]
            if c == "(":
                level += 1
            elif c == ")":
                level -= 1
                if level == 0:
                    if self.last_comment is not None:
                        parts.append(data[start : self.pos])
                        self.last_comment = "".join(parts)
                    self.pos += 1
                    return 1 if self.pos < end else 0
            elif c == "\\":
                parts.append(data[start : self.pos])
                start = self.pos + 1
                self.pos += 1
                if self.pos >= end:
                    return -1
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        data, end = self.data, self.end
        while self.pos < end:
            self.pos = _LWSP_RE.match(data, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= end or data[self.pos] != "(":
                break
            if self.last_comment is not None:
                self.last_comment = ""
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < end else 0

    def parse_atom(self, out: list[str]) -> int:
        return self._take(_ATOM_RE, out)

    def parse_dot_atom(self, out: list[str]) -> int:
        m = _ATOM_RE.match(self.data, self.pos)
        if m is None:
            return -1
        while True:
            out.append(m.group())
            self.pos = m.end()
            if self.pos >= self.end:
                return 0
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.data[self.pos] != ".":
                return 1
            self.pos += 1
            out.append(".")
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            m = _ATOM_RE.match(self.data, self.pos)
            if m is None:
                # RFC 822 allowed an empty atom here; carry on like Dovecot.
                return 1

    def parse_mime_token(self, out: list[str]) -> int:
        return self._take(_TOKEN_RE, out)

    def _take(self, pattern: re.Pattern[str], out: list[str]) -> int:
        """Append the match of ``pattern`` at the position, then skip white
        space: -1 if nothing matches, 0 at the end of the data, else what
        skip_lwsp says."""
        m = pattern.match(self.data, self.pos)
        if m is None:
            return -1
        out.append(m.group())
        self.pos = m.end()
        if self.pos >= self.end:
            return 0
        return self.skip_lwsp()

    def parse_quoted_string(self, out: list[str]) -> int:
        data, end = self.data, self.end
        self.pos += 1
        start = self.pos
        while self.pos < end:
            c = data[self.pos]
            if c == '"':
                out.append(data[start : self.pos])
                self.pos += 1
                return self.skip_lwsp()
            if c == "\n":
                stop = self.pos
                if stop > start and data[stop - 1] == "\r":
                    stop -= 1
                out.append(data[start:stop])
                start = self.pos + 1
            elif c == "\\":
                self.pos += 1
                if self.pos >= end:
                    return -1
                out.append(data[start : self.pos - 1])
                start = self.pos
            self.pos += 1
        return -1

    def _parse_atom_or_dot(self, out: list[str]) -> int:
        return self._take(_ATOM_OR_DOT_RE, out)

    def parse_phrase(self, out: list[str]) -> int:
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == ".":
            return -1
        while True:
            if self.data[self.pos] == '"':
                ret = self.parse_quoted_string(out)
            else:
                ret = self._parse_atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.data[self.pos]
            if c not in ATEXT_CHARS and c != '"' and c != ".":
                break
            out.append(" ")
        return self.skip_lwsp()

    def _parse_domain_literal(self, out: list[str]) -> int:
        data, end = self.data, self.end
        start = self.pos
        while self.pos < end:
            c = data[self.pos]
            if c == "\\":
                self.pos += 1
                if self.pos >= end:
                    break
            elif c == "]":
                self.pos += 1
                out.append(data[start : self.pos])
                return self.skip_lwsp()
            self.pos += 1
        return -1

    def parse_domain(self, out: list[str]) -> int:
        """``@`` domain; the cursor is on the ``@``."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == "[":
            return self._parse_domain_literal(out)
        return self.parse_dot_atom(out)

    def parse_content_type(self, out: list[str]) -> int:
        if self.skip_lwsp() <= 0:
            return -1
        if self.parse_mime_token(out) <= 0:
            return -1
        if self.data[self.pos] != "/":
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        out.append("/")
        return self.parse_mime_token(out)

    def parse_content_param(self) -> tuple[int, str | None, str]:
        """One ``; key=value``: returns (ret, key, value)."""
        if self.pos >= self.end:
            return 0, None, ""
        if self.data[self.pos] != ";":
            return -1, None, ""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, None, ""
        key: list[str] = []
        if self.parse_mime_token(key) <= 0:
            return -1, None, ""
        if self.data[self.pos] != "=":
            return -1, None, ""
        self.pos += 1
        value: list[str] = []
        ret = self.skip_lwsp()
        if ret <= 0:
            pass
        elif self.data[self.pos] == '"':
            ret = self.parse_quoted_string(value)
        elif self.data[self.pos] == "=":
            # broken input such as name==?utf-8?b?...?=
            start = self.pos
            while self.pos < self.end and self.data[self.pos] not in "; \t\r\n":
                self.pos += 1
            value.append(self.data[start : self.pos])
        else:
            ret = self.parse_mime_token(value)
        return (-1 if ret < 0 else 1), "".join(key), "".join(value)


def _rfc2231_merge(
    plain: list[tuple[str, str]], extended: list[tuple[str, int, bool, str]]
) -> list[tuple[str, str]]:
    """Join ``key*0``, ``key*1*`` ... continuations (RFC 2231 §3, §4)."""
    ordered = sorted(extended, key=lambda p: (p[0], p[1]))
    result = list(plain)
    i = 0
    while i < len(ordered):
        key = ordered[i][0]
        j = i
        ok = True
        have_ext = False
        expect = 0
        while j < len(ordered) and ordered[j][0].lower() == key.lower():
            if ordered[j][1] != expect:
                ok = False
            have_ext = have_ext or ordered[j][2]
            expect += 1
            j += 1
        group = ordered[i:j]
        if not ok:
            for k, idx, ext, val in group:
                result.append((f"{k}*{idx}*" if ext else f"{k}*{idx}", val))
        else:
            pieces = ["''"] if (not group[0][2] and have_ext) else []
            for _k, _idx, ext, val in group:
                pieces.append(val.replace("%", "%25") if (not ext and have_ext) else val)
            result.append((key + "*" if have_ext else key, "".join(pieces)))
        i = j
    return result


def parse_params(parser: Rfc822Parser) -> list[tuple[str, str]]:
    """All ``; key=value`` parameters, RFC 2231 continuations merged."""
    plain: list[tuple[str, str]] = []
    extended: list[tuple[str, int, bool, str]] = []
    while True:
        ret, key, value = parser.parse_content_param()
        if ret == 0:
            break
        if ret < 0 or key is None:
            if parser.pos >= parser.end:
                break
            parser.pos += 1
            continue
        star = key.find("*")
        if star >= 0:
            rest = key[star + 1 :]
            digits = 0
            n = 0
            while n < len(rest) and rest[n].isdigit() and rest[n] < "\x80":
                digits = digits * 10 + int(rest[n])
                n += 1
            tail = rest[n:]
            is_ext = rest == "" or tail.startswith("*")
            if tail.startswith("*"):
                tail = tail[1:]
            if tail == "" and (n > 0 or rest == "" or rest == "*"):
                extended.append((key[:star], digits if n else 0, is_ext, value))
                continue
        plain.append((key, value))
    if not extended:
        return plain
    return _rfc2231_merge(plain, extended)
