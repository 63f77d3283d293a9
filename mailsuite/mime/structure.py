"""The MIME tree of a stored message, with byte offsets (RFC 2045, RFC 2046).

:func:`parse_message` walks the raw bytes once and returns the root
:class:`Part`.  Every part knows where its header and body start and end in
the raw bytes, how many lines they hold, its Content-* fields (the parsed
values BODYSTRUCTURE needs) and, for a message (the root or the child of a
``message/rfc822`` part), the ENVELOPE fields.  Renderers in
:mod:`mailsuite.mime.bodystructure`, :mod:`mailsuite.mime.envelope` and
:mod:`mailsuite.mime.sections` work from the Part and the raw bytes without
parsing again.

Boundary handling follows the reference server (Dovecot), so our answers
match what clients have seen there: a boundary line only has to *start*
with ``--boundary`` (the longest boundary in scope wins, the innermost on a
tie), the CRLF before a boundary belongs to the boundary, a boundary of an
outer multipart ends the inner parts, a missing closing boundary ends the
part at the end of the message, a header ended by a boundary or by the end
of the data is still a header.

Contract: never raises on any input (8-bit, NUL, broken syntax, no CRLF);
nesting is limited to :data:`MAX_DEPTH` levels and :data:`MAX_PARTS` parts
(deeper structure is treated as opaque body), so work is bounded by
O(size x boundaries in scope).

:meth:`Part.to_data` gives a compact JSON-able list that
:meth:`Part.from_data` turns back into an equal Part; the storage index
caches it instead of parsing again.
"""

from __future__ import annotations

from typing import Any

from mailsuite.mime.address import Address, parse_addresses
from mailsuite.mime.rfc822 import Rfc822Parser, parse_params

MULTIPART = 1
RFC822 = 2
TEXT = 4
IS_MIME = 8
HAS_NULS = 16
DIGEST = 32

MAX_DEPTH = 100
MAX_PARTS = 10000
BOUNDARY_MAX = 80
BOUNDARY_END_MAX = BOUNDARY_MAX + 4

#: ENVELOPE field order (RFC 3501 §7.4.2); addresses are at 2..7.
ENVELOPE_FIELDS = (
    "date",
    "subject",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "in-reply-to",
    "message-id",
)
_ENV_INDEX = {name: i for i, name in enumerate(ENVELOPE_FIELDS)}
_ADDRESS_FIELDS = range(2, 8)

Params = list[tuple[str, str]]


class Part:
    """One MIME part.  Offsets index the raw message bytes.

    ``start``..``body_start`` is the header (blank line included, when there
    is one), ``body_start``..``end`` the body.  ``content`` holds the parsed
    Content-* fields under short keys (``t`` type, ``s`` subtype, ``p``
    params, ``e`` transfer encoding, ``i`` id, ``d`` description, ``m`` md5,
    ``dd`` disposition, ``dp`` its params, ``l`` languages, ``lo``
    location); ``env`` the ten ENVELOPE values (strings, or address lists)
    for the root and for the child of a message/rfc822 part.
    """

    __slots__ = (
        "body_lines",
        "body_start",
        "body_vsize",
        "children",
        "content",
        "end",
        "env",
        "flags",
        "hdr_lines",
        "start",
    )

    def __init__(self, start: int) -> None:
        self.start = start
        self.body_start = start
        self.end = start
        self.hdr_lines = 0
        self.body_lines = 0
        self.body_vsize = 0
        self.flags = 0
        self.content: dict[str, Any] = {}
        self.env: list[Any] | None = None
        self.children: list[Part] = []

    # -- convenience -----------------------------------------------------
    @property
    def is_multipart(self) -> bool:
        return bool(self.flags & MULTIPART)

    @property
    def is_message(self) -> bool:
        """True for a message/rfc822 part (its one child is the message)."""
        return bool(self.flags & RFC822)

    @property
    def media_type(self) -> tuple[str, str]:
        """(type, subtype) lower-cased, with the RFC 2045 defaults."""
        if self.flags & RFC822:
            return ("message", "rfc822")
        ctype = self.content.get("t")
        if ctype is None:
            return ("text", "plain")
        return (ctype.lower(), self.content.get("s", "").lower())

    def param(self, name: str) -> str | None:
        """A Content-Type parameter (case-insensitive name) or None."""
        for key, value in self.content.get("p", ()):
            if key.lower() == name:
                return str(value)
        return None

    @property
    def cte(self) -> str:
        return str(self.content.get("e", "7bit")).lower()

    def walk(self) -> list[Part]:
        """This part and all descendants, depth first."""
        out: list[Part] = []
        stack = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out

    # -- cache form ----------------------------------------------------
    def to_data(self) -> list[Any]:
        """A compact JSON-able form: offsets, counts, fields, children."""
        data: list[Any] = [
            self.start,
            self.body_start - self.start,
            self.end - self.body_start,
            self.hdr_lines,
            self.body_lines,
            self.body_vsize - (self.end - self.body_start),
            self.flags,
            self.content or 0,
            _env_to_data(self.env),
        ]
        if self.children:
            data.append([c.to_data() for c in self.children])
        return data

    @classmethod
    def from_data(cls, data: list[Any]) -> Part:
        """Rebuild a Part from :meth:`to_data` output."""
        part = cls(int(data[0]))
        part.body_start = part.start + int(data[1])
        part.end = part.body_start + int(data[2])
        part.hdr_lines = int(data[3])
        part.body_lines = int(data[4])
        part.body_vsize = int(data[2]) + int(data[5])
        part.flags = int(data[6])
        content = data[7] or {}
        part.content = {
            k: ([tuple(p) for p in v] if k in ("p", "dp") else v) for k, v in content.items()
        }
        part.env = _env_from_data(data[8])
        if len(data) > 9:
            part.children = [cls.from_data(c) for c in data[9]]
        return part

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Part):
            return NotImplemented
        return self.to_data() == other.to_data()

    def __repr__(self) -> str:
        t, s = self.media_type
        return f"<Part {t}/{s} {self.start}:{self.body_start}:{self.end} {len(self.children)}>"


def _env_to_data(env: list[Any] | None) -> Any:
    if env is None:
        return 0
    return [
        [list(a) for a in v] if (i in _ADDRESS_FIELDS and v is not None) else v
        for i, v in enumerate(env)
    ]


def _env_from_data(data: Any) -> list[Any] | None:
    if not data:
        return None
    return [
        [Address(*a) for a in v] if (i in _ADDRESS_FIELDS and v is not None) else v
        for i, v in enumerate(data)
    ]


# ---------------------------------------------------------------------------
# header lines


def iter_fields(raw: bytes, start: int, stop: int) -> list[tuple[str, str, int, int]]:
    """The header fields in ``raw[start:stop]``.

    Returns ``(name, value, line_start, line_end)`` per field; ``value`` is
    the unfolded value as the reference server sees it (leading white space
    after the colon removed, continuation lines joined with ``\\n`` and kept
    with their leading white space); a line without a colon is a field whose
    name is the whole line and whose value is empty.  Both are latin-1 text.
    """
    out: list[tuple[str, str, int, int]] = []
    pos = start
    cur: list[Any] | None = None
    while pos < stop:
        lf = raw.find(b"\n", pos, stop)
        line_end = stop if lf < 0 else lf + 1
        content_end = line_end if lf < 0 else (lf - 1 if lf > pos and raw[lf - 1] == 13 else lf)
        if content_end == pos and lf >= 0:
            break
        first = raw[pos]
        if (first == 32 or first == 9) and cur is not None:
            cur[1].append(raw[pos:content_end].decode("latin-1"))
            cur[3] = line_end
        else:
            if cur is not None:
                out.append((cur[0], "\n".join(cur[1]), cur[2], cur[3]))
            line = raw[pos:content_end].decode("latin-1")
            colon = line.find(":")
            if colon < 0:
                cur = [line, [""], pos, line_end]
            else:
                value = line[colon + 1 :]
                stripped = value.lstrip(" \t")
                if not stripped and value:
                    stripped = value[1:]
                cur = [line[:colon].rstrip(" \t"), [stripped], pos, line_end]
        pos = line_end
    if cur is not None:
        out.append((cur[0], "\n".join(cur[1]), cur[2], cur[3]))
    return out


# ---------------------------------------------------------------------------
# Content-* fields


def _parse_content_type(content: dict[str, Any], value: str) -> str:
    """Fill t/s/p; returns the "type/subtype" text used for the part flags."""
    parser = Rfc822Parser(value)
    parser.skip_lwsp()
    out: list[str] = []
    ret = parser.parse_content_type(out)
    text = "".join(out) if ret >= 0 else ""
    slash = text.find("/")
    content["t"] = text if slash < 0 else text[:slash]
    content["s"] = "" if slash < 0 else text[slash + 1 :]
    if ret >= 0:
        params = parse_params(parser)
        if params:
            content["p"] = params
    return text


def _parse_content_header(content: dict[str, Any], name: str, value: str) -> str | None:
    """Handle one Content-* field; returns the type text for Content-Type."""
    sub = name[8:].lower()
    if sub == "type":
        if "t" not in content:
            return _parse_content_type(content, value)
    elif sub == "transfer-encoding":
        if "e" not in content:
            parser = Rfc822Parser(value)
            parser.skip_lwsp()
            out: list[str] = []
            if parser.parse_mime_token(out) >= 0 and parser.skip_lwsp() == 0 and out[0]:
                content["e"] = out[0]
    elif sub == "id":
        content.setdefault("i", value)
    elif sub == "description":
        content.setdefault("d", value)
    elif sub == "md5":
        content.setdefault("m", value)
    elif sub == "location":
        content.setdefault("lo", value)
    elif sub == "disposition":
        if "dp" not in content:
            _parse_disposition(content, value)
    elif sub == "language" and "l" not in content:
        _parse_language(content, value)
    return None


def _parse_disposition(content: dict[str, Any], value: str) -> None:
    parser = Rfc822Parser(value)
    parser.skip_lwsp()
    out: list[str] = []
    if parser.parse_mime_token(out) < 0:
        return
    content["dd"] = out[0]
    params = parse_params(parser)
    if params:
        content["dp"] = params


def _parse_language(content: dict[str, Any], value: str) -> None:
    parser = Rfc822Parser(value)
    langs: list[str] = []
    parser.skip_lwsp()
    while True:
        out: list[str] = []
        if parser.parse_atom(out) < 0:
            break
        langs.append(out[0])
        if parser.pos >= parser.end or parser.data[parser.pos] != ",":
            break
        parser.pos += 1
        parser.skip_lwsp()
    if langs:
        content["l"] = langs


def _envelope_set(env: list[Any], name: str, value: str) -> None:
    idx = _ENV_INDEX.get(name.lower())
    if idx is None:
        return
    if idx in _ADDRESS_FIELDS:
        env[idx] = parse_addresses(value) or None
    else:
        env[idx] = value


def _flags_for_type(text: str) -> int:
    low = text.lower()
    if low == "message/rfc822":
        return RFC822
    if low.startswith("text") and (len(low) == 4 or low[4] == "/"):
        return TEXT
    if low.startswith("multipart/"):
        return MULTIPART | (DIGEST if low[10:] == "digest" else 0)
    return 0


# ---------------------------------------------------------------------------
# the parser


class _Boundary:
    __slots__ = ("part", "text")

    def __init__(self, part: Part, text: bytes) -> None:
        self.part = part
        self.text = text


_Event = tuple[int, _Boundary] | None


class _Parser:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.n = len(raw)
        self.stack: list[_Boundary] = []
        self.parts = 0

    # boundary lines ----------------------------------------------------
    def match(self, line: int) -> _Boundary | None:
        """The boundary in scope that the line at ``line`` starts with."""
        raw = self.raw
        p = line + 2
        best: _Boundary | None = None
        for b in reversed(self.stack):
            if raw.startswith(b.text, p) and (best is None or len(best.text) < len(b.text)):
                best = b
        return best

    def scan(self, pos: int) -> tuple[int, _Boundary] | None:
        """The next boundary line at or after ``pos`` (a line start)."""
        if not self.stack:
            return None
        raw = self.raw
        if raw.startswith(b"--", pos):
            b = self.match(pos)
            if b is not None:
                return pos, b
        while True:
            j = raw.find(b"\n--", pos)
            if j < 0:
                return None
            pos = j + 1
            b = self.match(pos)
            if b is not None:
                return pos, b

    def before_newline(self, line: int, floor: int) -> int:
        """Where the body ends when a boundary line starts at ``line``."""
        if line <= floor:
            return floor
        end = line - 1
        if end > floor and self.raw[end - 1] == 13:
            end -= 1
        return end

    # parts -------------------------------------------------------------
    def part(self, part: Part, parent: Part | None, depth: int) -> _Event:
        self.parts += 1
        event, eoh = self.header(part, parent)
        n = self.n
        if event is not None or not eoh:
            part.end = part.body_start
            if event is None:
                part.end = n
            return event
        boundary = part.param("boundary") if part.flags & MULTIPART else None
        room = depth < MAX_DEPTH and self.parts < MAX_PARTS
        if boundary is not None and room:
            b = _Boundary(part, boundary.encode("latin-1")[:BOUNDARY_MAX])
            self.stack.append(b)
            return self.multipart(part, b, depth)
        if part.flags & RFC822:
            if room:
                child = Part(part.body_start)
                part.children.append(child)
                event = self.part(child, part, depth + 1)
                part.end = child.end
                return event
            part.flags &= ~RFC822
        found = self.scan(part.body_start)
        if found is None:
            part.end = n
            return None
        part.end = self.before_newline(found[0], part.body_start)
        return found

    def multipart(self, part: Part, own: _Boundary, depth: int) -> _Event:
        found = self.scan(part.body_start)
        while True:
            if found is None:
                part.end = self.n
                return None
            line, b = found
            if b is not own:
                part.end = self.before_newline(line, part.body_start)
                return found
            idx = self.stack.index(own)
            rest = line + 2 + len(own.text)
            closing = self.raw.startswith(b"--", rest)
            lf = self.raw.find(b"\n", rest)
            if closing:
                del self.stack[idx:]
                if lf < 0:
                    part.end = self.n
                    return None
                nxt = self.scan(lf + 1)
                if nxt is None:
                    part.end = self.n
                    return None
                part.end = self.before_newline(nxt[0], lf + 1)
                return nxt
            del self.stack[idx + 1 :]
            if lf < 0 or self.parts >= MAX_PARTS:
                part.end = self.n
                if lf >= 0:
                    # too many parts: the rest is opaque body
                    self.stack.pop()
                return None
            child = Part(lf + 1)
            child.flags |= IS_MIME
            part.children.append(child)
            found = self.part(child, part, depth + 1)

    def header(self, part: Part, parent: Part | None) -> tuple[_Event, bool]:
        raw, n = self.raw, self.n
        pos = part.start
        prev_nl = 0
        event: _Event = None
        eoh = False
        while pos < n:
            if self.stack and raw.startswith(b"--", pos):
                b = self.match(pos)
                if b is not None:
                    event = (pos, b)
                    break
            lf = raw.find(b"\n", pos)
            if lf < 0:
                pos = n
                prev_nl = 0
                break
            if lf == pos or (lf == pos + 1 and raw[pos] == 13):
                pos = lf + 1
                eoh = True
                break
            prev_nl = 2 if raw[lf - 1] == 13 else 1
            pos = lf + 1
        hdr_end = pos - prev_nl if event is not None else pos
        part.body_start = hdr_end
        part.hdr_lines = raw.count(b"\n", part.start, hdr_end)
        if raw.find(b"\x00", part.start, hdr_end) >= 0:
            part.flags |= HAS_NULS
        self.fields(part, parent, hdr_end)
        return event, eoh

    def fields(self, part: Part, parent: Part | None, hdr_end: int) -> None:
        content: dict[str, Any] = {}
        is_message = parent is None or bool(parent.flags & RFC822)
        env: list[Any] | None = [None] * 10 if is_message else None
        type_text: str | None = None
        for name, value, _s, _e in iter_fields(self.raw, part.start, hdr_end):
            low = name.lower()
            if low.startswith("content-"):
                got = _parse_content_header(content, name, value)
                if got is not None and type_text is None:
                    type_text = got
            elif low == "mime-version":
                part.flags |= IS_MIME
            if env is not None:
                _envelope_set(env, low, value)
        if type_text is not None:
            part.flags |= IS_MIME | _flags_for_type(type_text)
        if not part.flags & IS_MIME:
            content = {}
        if type_text is None or not part.flags & IS_MIME:
            if parent is not None and parent.flags & DIGEST:
                part.flags |= RFC822
            else:
                part.flags |= TEXT
        part.content = content
        part.env = env


def _finish(part: Part, raw: bytes) -> None:
    for p in part.walk():
        lines = raw.count(b"\n", p.body_start, p.end)
        p.body_lines = lines
        p.body_vsize = p.end - p.body_start + lines - raw.count(b"\r\n", p.body_start, p.end)
        if raw.find(b"\x00", p.body_start, p.end) >= 0:
            p.flags |= HAS_NULS


def parse_message(raw: bytes) -> Part:
    """Parse ``raw`` (the stored message, CRLF line ends) into its MIME tree.

    Never raises for any ``bytes`` input; see the module docstring.
    """
    root = Part(0)
    parser = _Parser(raw)
    parser.part(root, None, 0)
    _finish(root, raw)
    return root


def envelope_fields(part: Part) -> list[Any]:
    """The ENVELOPE values of a message part (all None when absent)."""
    return part.env if part.env is not None else [None] * 10


__all__ = [
    "ENVELOPE_FIELDS",
    "MAX_DEPTH",
    "MAX_PARTS",
    "Address",
    "Params",
    "Part",
    "envelope_fields",
    "iter_fields",
    "parse_message",
]
