"""FETCH item rendering: the bytes of one ``msg-att`` (RFC 3501 §7.4.2).

Contract for the IMAP session (one call per requested item)::

    from mailsuite.imap.fetchrender import FetchItem, render_item, render_items

    data = render_item(item, raw, part, flags=..., uid=..., internaldate=...,
                       size=...)
    # -> b'BODY[1.2]<0> {123}\\r\\n...'   (no leading/trailing space)

* ``item`` -- anything with the attributes of :class:`FetchItem` (the
  session's parsed ``FetchAtt`` qualifies): ``name`` upper-case (FLAGS, UID,
  INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, RFC822,
  RFC822.HEADER, RFC822.TEXT, BINARY, BINARY.SIZE), ``section`` (None for
  BODY = structure), ``part`` (part numbers), ``specifier`` ("", HEADER,
  HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME), ``fields`` (header names),
  ``partial`` ``(origin, count)`` or None, ``peek``.
* ``raw`` -- the stored message (CRLF line ends), as ``bytes`` or a binary
  file object (read completely); may be None for FLAGS/UID/INTERNALDATE/
  RFC822.SIZE.
* ``part`` -- the cached :class:`~mailsuite.mime.structure.Part` from the
  index, or None to parse ``raw`` here.
* ``flags`` -- iterable of flag strings (``\\Seen``, keywords);
  ``internaldate`` an aware ``datetime``; ``size`` RFC822.SIZE.

Output rules: body sections are always literals (``{n}``), with NUL bytes
sent as 0x80 as RFC 3501 forbids NUL in literals; BINARY uses ``~{n}``
(RFC 3516 literal8) when something was decoded or NULs are present; a part
that does not exist is ``{0}``; a partial fetch answers
``BODY[...]<origin>`` with only the requested slice.  Setting ``\\Seen`` for
non-PEEK items is the session's job (``item.peek``).

Errors: :class:`mailsuite.mime.decode.BinaryError` for BINARY/BINARY.SIZE
of a part whose transfer encoding is unknown or whose data does not decode;
answer ``NO [UNKNOWN-CTE]`` (``err.code``) and send nothing for the item.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Protocol

from mailsuite.imap.responses import EPOCH
from mailsuite.mime.bodystructure import bodystructure
from mailsuite.mime.decode import BinaryError, binary_section, binary_size
from mailsuite.mime.envelope import envelope
from mailsuite.mime.sections import SectionSpec, partial, section
from mailsuite.mime.structure import Part, parse_message

__all__ = [
    "BinaryError",
    "FetchItem",
    "FetchItemLike",
    "format_internaldate",
    "literal",
    "quote",
    "render_item",
    "render_items",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FetchItemLike(Protocol):
    """What :func:`render_item` reads from a parsed FETCH attribute."""

    @property
    def name(self) -> str: ...
    @property
    def section(self) -> str | None: ...
    @property
    def part(self) -> tuple[int, ...]: ...
    @property
    def specifier(self) -> str: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def partial(self) -> tuple[int, int] | None: ...


@dataclass(frozen=True, slots=True)
class FetchItem:
    """A parsed FETCH attribute; see the module docstring for the fields."""

    name: str
    section: str | None = None
    part: tuple[int, ...] = ()
    specifier: str = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False


def literal(data: bytes, binary: bool = False) -> bytes:
    """``{n}\\r\\n`` + data, or ``~{n}`` (RFC 3516) when ``binary``."""
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def quote(value: bytes | str | None) -> bytes:
    """An IMAP ``nstring``: NIL, a quoted string with escapes, or a literal.

    Literals are used for 8-bit bytes, CR, LF and NUL.
    """
    if value is None:
        return b"NIL"
    data = value.encode("utf-8") if isinstance(value, str) else value
    if any(b > 0x7F or b in (0, 10, 13) for b in data):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def format_internaldate(when: datetime.datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 3501 §9 ``date-time``)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    offset = when.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    text = (
        f'"{when.day:2d}-{_MONTHS[when.month - 1]}-{when.year:04d} '
        f'{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )
    return text.encode("ascii")


def _section_text(item: FetchItemLike) -> str:
    pieces = [str(n) for n in item.part]
    if item.specifier:
        pieces.append(item.specifier)
    text = ".".join(pieces)
    if item.specifier.startswith("HEADER.FIELDS"):
        text += " (" + " ".join(item.fields) + ")"
    return text


def _read(raw: bytes | IO[bytes] | None) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw)
    raw.seek(0)
    return raw.read()


class _Lazy:
    """Raw bytes and Part, read/parsed at most once per message."""

    def __init__(self, raw: bytes | IO[bytes] | None, part: Part | None) -> None:
        self._source = raw
        self._raw: bytes | None = raw if isinstance(raw, bytes) else None
        self._part = part

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = _read(self._source)
        return self._raw

    @property
    def part(self) -> Part:
        if self._part is None:
            self._part = parse_message(self.raw)
        return self._part


def _body_item(item: FetchItemLike, msg: _Lazy, name: str) -> bytes:
    if not item.part and not item.specifier:
        data = msg.raw  # the whole message: no structure needed
    else:
        spec = SectionSpec(tuple(item.part), item.specifier, tuple(item.fields))
        data = section(msg.raw, msg.part, spec)
    origin = ""
    if item.partial is not None:
        data = partial(data, item.partial[0], item.partial[1])
        origin = f"<{item.partial[0]}>"
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x80")
    label = f"{name}[{_section_text(item)}]{origin} " if name else ""
    return label.encode("latin-1") + literal(data)


def _binary_item(item: FetchItemLike, msg: _Lazy) -> bytes:
    numbers = tuple(item.part)
    label = f"[{'.'.join(str(n) for n in numbers)}]"
    if item.name == "BINARY.SIZE":
        return f"BINARY.SIZE{label} {binary_size(msg.raw, msg.part, numbers)}".encode()
    data, lit8 = binary_section(msg.raw, msg.part, numbers)
    origin = ""
    if item.partial is not None:
        data = partial(data, item.partial[0], item.partial[1])
        origin = f"<{item.partial[0]}>"
    return f"BINARY{label}{origin} ".encode() + literal(data, lit8)


def render_item(
    item: FetchItemLike,
    raw: bytes | IO[bytes] | None,
    part: Part | None,
    *,
    flags: Iterable[str] = (),
    uid: int = 0,
    internaldate: datetime.datetime | None = None,
    size: int = 0,
) -> bytes:
    """The bytes of one FETCH item; see the module docstring.

    Raises :class:`BinaryError` (BINARY items only) and ``ValueError`` for
    an unknown item name.
    """
    return _render(item, _Lazy(raw, part), flags, uid, internaldate, size)


def _render(
    item: FetchItemLike,
    msg: _Lazy,
    flags: Iterable[str],
    uid: int,
    internaldate: datetime.datetime | None,
    size: int,
) -> bytes:
    name = item.name.upper()
    if name == "UID":
        return b"UID %d" % uid
    if name == "FLAGS":
        return b"FLAGS (" + " ".join(flags).encode("utf-8") + b")"
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % size
    if name == "INTERNALDATE":
        when = internaldate or EPOCH
        return b"INTERNALDATE " + format_internaldate(when)
    if name == "ENVELOPE":
        return b"ENVELOPE " + envelope(msg.part)
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + bodystructure(msg.part)
    if name == "BODY" and item.section is None:
        return b"BODY " + bodystructure(msg.part, extensible=False)
    if name == "BODY":
        return _body_item(item, msg, "BODY")
    if name in ("BINARY", "BINARY.SIZE"):
        return _binary_item(item, msg)
    if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
        spec = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
        body = _body_item(FetchItem("BODY", spec, (), spec), msg, "")
        return name.encode() + b" " + body
    raise ValueError(f"unknown FETCH item {item.name!r}")


def render_items(
    items: Iterable[FetchItemLike],
    raw: bytes | IO[bytes] | None,
    part: Part | None,
    *,
    flags: Iterable[str] = (),
    uid: int = 0,
    internaldate: datetime.datetime | None = None,
    size: int = 0,
) -> bytes:
    """``(item item ...)`` for one message, reading/parsing it at most once.

    Raises like :func:`render_item`; nothing is returned for the message
    then, as the reference server does.
    """
    msg = _Lazy(raw, part)
    flag_list = list(flags)
    out = [_render(i, msg, flag_list, uid, internaldate, size) for i in items]
    return b"(" + b" ".join(out) + b")"
