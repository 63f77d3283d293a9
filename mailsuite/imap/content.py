"""The seam between the FETCH command and the message-content layer.

:func:`render_item` produces the bytes of one FETCH data item (name and
value, e.g. ``BODY[HEADER] {42}\\r\\n...``): the metadata items here, the
content items by :mod:`mailsuite.imap.fetchrender` (byte-exact sections,
ENVELOPE and BODYSTRUCTURE as the reference server renders them).
:func:`needs_raw` and :func:`needs_structure` say what must be loaded for a
request.  Runs in a pool thread.

Raises :class:`mailsuite.mime.decode.BinaryError` (``err.code``
``UNKNOWN-CTE``) for BINARY of a part that cannot be decoded.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from mailsuite.imap import fetchrender, responses
from mailsuite.imap.fetchatts import FetchAtt
from mailsuite.mime.decode import BinaryError
from mailsuite.mime.structure import Part

__all__ = [
    "BinaryError",
    "header_only",
    "header_part",
    "needs_raw",
    "needs_structure",
    "render_item",
]

_META = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})
_STRUCTURE_ONLY = frozenset({"ENVELOPE", "BODYSTRUCTURE"})


def needs_raw(atts: Sequence[FetchAtt]) -> bool:
    """True if some item needs the stored bytes (sections, RFC822*, BINARY)."""
    return any(
        a.name not in _META
        and a.name not in _STRUCTURE_ONLY
        and not (a.name == "BODY" and a.section is None)
        for a in atts
    )


def needs_structure(atts: Sequence[FetchAtt]) -> bool:
    """True if some item needs the parsed MIME structure (cached in the index);
    the whole message (``BODY[]``, ``RFC822``) does not."""
    return any(a.name not in _META and not _whole(a) for a in atts)


def header_only(atts: Sequence[FetchAtt]) -> bool:
    """True if every content item is the top-level header or some of its
    fields (``BODY[HEADER]``, ``BODY[HEADER.FIELDS (..)]``,
    ``BODY[HEADER.FIELDS.NOT (..)]``, ``RFC822.HEADER``): the stored header
    bytes and :func:`header_part` then render them, no structure needed."""
    heads = [a for a in atts if a.name not in _META]
    return bool(heads) and all(_top_header(a) for a in heads)


def _top_header(att: FetchAtt) -> bool:
    if att.name == "RFC822.HEADER":
        return True
    return (
        att.name == "BODY"
        and att.section is not None
        and not att.part
        and att.specifier in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")
    )


def header_part(head: bytes) -> Part:
    """A root part for a message whose header is ``head`` (the section
    functions read only its header offsets)."""
    part = Part(0)
    part.body_start = part.end = len(head)
    return part


def _whole(att: FetchAtt) -> bool:
    """``BODY[]``/``BODY.PEEK[]`` (any partial) or ``RFC822``: the stored bytes as they are."""
    if att.name == "RFC822":
        return True
    return att.name == "BODY" and att.section is not None and not att.part and not att.specifier


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
    return fetchrender.render_item(
        att, raw, part, flags=flags, uid=uid, internaldate=internaldate, size=size
    )
