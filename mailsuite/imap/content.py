"""The seam between the FETCH command and the message-content layer.

:func:`render_item` produces the bytes of one FETCH data item (name and
value, e.g. ``BODY[HEADER] {42}\\r\\n...``).  Content items are delegated to
the MIME layer; this module decides what must be loaded for a request
(:func:`needs_raw`, :func:`needs_structure`).  Runs in a pool thread.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from mailsuite.imap import responses
from mailsuite.imap.fetchatts import FetchAtt

_STRUCTURE_ITEMS = frozenset({"ENVELOPE", "BODYSTRUCTURE", "BODY"})


def needs_raw(atts: Sequence[FetchAtt]) -> bool:
    return any(
        a.needs_content and not (a.name in _STRUCTURE_ITEMS and a.section is None) for a in atts
    )


def needs_structure(atts: Sequence[FetchAtt]) -> bool:
    return any(a.needs_content for a in atts)


def render_item(
    att: FetchAtt,
    *,
    uid: int,
    flags: frozenset[str],
    size: int,
    internaldate: datetime.datetime,
    raw: bytes | None,
    part: Any,
) -> bytes:
    """One ``name value`` pair of a FETCH response."""
    name = att.name
    if name == "UID":
        return b"UID %d" % uid
    if name == "FLAGS":
        return b"FLAGS " + responses.flag_list(flags).encode()
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % size
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + responses.internaldate(internaldate).encode()
    return _content_item(att, raw or b"", part)


def _content_item(att: FetchAtt, raw: bytes, part: Any) -> bytes:
    """Interim renderer until mailsuite.imap.fetchrender is integrated."""
    head_end = raw.find(b"\r\n\r\n")
    header = raw if head_end < 0 else raw[: head_end + 4]
    text = b"" if head_end < 0 else raw[head_end + 4 :]
    name = att.name
    if name in ("ENVELOPE", "BODYSTRUCTURE") or (name == "BODY" and att.section is None):
        return name.encode() + b" NIL"
    if name == "RFC822":
        return b"RFC822 " + responses.literal(raw)
    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + responses.literal(header)
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + responses.literal(text)
    if att.part:
        value = b""
    elif att.specifier == "":
        value = raw
    elif att.specifier == "HEADER":
        value = header
    elif att.specifier == "TEXT":
        value = text
    else:
        value = _header_fields(header, att.fields, att.specifier.endswith(".NOT"))
    if name == "BINARY.SIZE":
        return f"BINARY.SIZE[{att.section_text()}] {len(value)}".encode()
    if att.partial is not None:
        start, count = att.partial
        value = value[start : start + count]
    return att.response_name().encode() + b" " + responses.literal(value)


def _header_fields(header: bytes, fields: tuple[str, ...], exclude: bool) -> bytes:
    wanted = {f.lower().encode() for f in fields}
    out = []
    keep = False
    for line in header.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        field = line.split(b":", 1)[0].strip().lower()
        keep = (field in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(x + b"\r\n" for x in out) + b"\r\n"
