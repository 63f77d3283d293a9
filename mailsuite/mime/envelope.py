"""ENVELOPE rendering (RFC 3501 §7.4.2) from a parsed :class:`Part`.

The values were collected by :func:`mailsuite.mime.structure.parse_message`;
rendering does not look at the raw bytes again.  Sender and Reply-To default
to From, as RFC 3501 requires.  Never raises.
"""

from __future__ import annotations

from typing import Any

from mailsuite.mime.address import Address
from mailsuite.mime.imapquote import for_humans, nstring
from mailsuite.mime.structure import Part

_EMPTY = "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL"


def _addresses(addrs: list[Address] | None) -> str:
    if not addrs:
        return "NIL"
    items = []
    for a in addrs:
        name = "NIL" if a.name is None else for_humans(a.name)
        items.append(f"({name} {nstring(a.route)} {nstring(a.mailbox)} {nstring(a.domain)})")
    return "(" + "".join(items) + ")"


def envelope_text(env: list[Any] | None) -> str:
    """The inside of the ENVELOPE parentheses, as latin-1 text."""
    if env is None:
        return _EMPTY
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, msgid = env
    return " ".join(
        (
            nstring(date),
            "NIL" if subject is None else for_humans(subject),
            _addresses(from_),
            _addresses(sender or from_),
            _addresses(reply_to or from_),
            _addresses(to),
            _addresses(cc),
            _addresses(bcc),
            nstring(in_reply_to),
            nstring(msgid),
        )
    )


def envelope(part: Part, raw: bytes | None = None) -> bytes:
    """``(date subject from ...)`` for the message ``part`` (usually the root).

    ``raw`` is accepted for symmetry with the other renderers and not read.
    """
    return ("(" + envelope_text(part.env) + ")").encode("latin-1")
