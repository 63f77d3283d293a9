"""FETCH attribute parsing (RFC 3501 §6.4.5, §9 ``fetch-att``; RFC 3516 BINARY).

:func:`parse_fetch_atts` turns the tokens after the sequence set into a list
of :class:`FetchAtt`.  Macros ALL, FAST and FULL expand here.  Rendering is
done elsewhere (:mod:`mailsuite.imap.fetch`); this module only knows syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsuite.imap.fetchrender import FetchItem
from mailsuite.imap.parser import ParseError, Token, tokenize

_SIMPLE = frozenset(
    {
        "FLAGS",
        "UID",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODYSTRUCTURE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "BODY",
        "MODSEQ",  # RFC 7162 §3.1.4.2
    }
)
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SECTION_RE = re.compile(
    r"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$",
    re.IGNORECASE,
)
_SPECIFIERS = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")
#: Items whose fetching sets \Seen (RFC 3501 §6.4.5).
_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})


@dataclass(frozen=True, slots=True)
class FetchAtt(FetchItem):
    """One requested item.

    ``name`` is the upper-case item without section: FLAGS, UID,
    INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY (structure
    when ``section`` is None), RFC822, RFC822.HEADER, RFC822.TEXT, BINARY,
    BINARY.SIZE.  For sectioned items ``section`` is the text inside the
    brackets, ``part`` its part numbers, ``specifier`` one of "", HEADER,
    HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME, ``fields`` the header
    names (upper-case), ``partial`` ``(origin, count)``.
    """

    @property
    def sets_seen(self) -> bool:
        """True if fetching this item sets ``\\Seen`` on a read-write mailbox."""
        if self.name in _SETS_SEEN:
            return True
        return self.section is not None and not self.peek and self.name != "BINARY.SIZE"

    @property
    def needs_content(self) -> bool:
        """True if the message file or its structure must be read."""
        return self.name not in ("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ")

    def response_name(self) -> str:
        """The item name as it appears in the FETCH response."""
        if self.section is None:
            return self.name
        section = self.section_text()
        origin = f"<{self.partial[0]}>" if self.partial is not None else ""
        return f"{self.name}[{section}]{origin}"

    def section_text(self) -> str:
        """The canonical section text: ``1.2.HEADER.FIELDS (A B)``."""
        parts = [str(p) for p in self.part]
        if self.specifier:
            parts.append(self.specifier)
        text = ".".join(parts)
        if self.specifier.startswith("HEADER.FIELDS"):
            text += " (" + " ".join(self.fields) + ")"
        return text


def parse_fetch_atts(args: list[Token]) -> list[FetchAtt]:
    """The fetch attributes of ``FETCH <set> <atts>``; raises ParseError."""
    if len(args) != 1:
        raise ParseError("Invalid fetch attributes")
    spec = args[0]
    if isinstance(spec, str) and spec.upper() in _MACROS:
        return [FetchAtt(name) for name in _MACROS[spec.upper()]]
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise ParseError("Empty fetch attribute list")
    return [parse_fetch_att(t) for t in items]


def parse_fetch_att(token: Token) -> FetchAtt:
    if not isinstance(token, str):
        raise ParseError("Invalid fetch attribute")
    upper = token.upper()
    if upper in _SIMPLE:
        return FetchAtt(upper)
    m = _SECTION_RE.match(token)
    if m is None:
        raise ParseError("Invalid fetch attribute")
    kind = m.group(1).upper()
    peek = kind.endswith(".PEEK")
    name = kind.removesuffix(".PEEK")
    partial = None
    if m.group(3) is not None:
        partial = (int(m.group(3)), int(m.group(4)))
        if partial[1] == 0 or name == "BINARY.SIZE":
            raise ParseError("Invalid partial")
    part, specifier, fields = _parse_section(m.group(2))
    if name.startswith("BINARY") and specifier:
        raise ParseError("BINARY takes part numbers only")
    return FetchAtt(name, m.group(2), part, specifier, fields, partial, peek)


def _parse_section(text: str) -> tuple[tuple[int, ...], str, tuple[str, ...]]:
    head, sp, rest = text.partition(" ")
    part: list[int] = []
    specifier = ""
    pieces = head.split(".") if head else []
    i = 0
    while i < len(pieces) and pieces[i].isdigit():
        if pieces[i].startswith("0") or len(pieces[i]) > 9:
            raise ParseError("Invalid section part")
        part.append(int(pieces[i]))
        i += 1
    if i < len(pieces):
        specifier = ".".join(pieces[i:]).upper()
        if specifier not in _SPECIFIERS or (specifier == "MIME" and not part):
            raise ParseError("Invalid section")
    fields: tuple[str, ...] = ()
    if specifier.startswith("HEADER.FIELDS"):
        if not sp:
            raise ParseError("Missing header field list")
        tokens = tokenize([rest.encode("ascii")])
        if len(tokens) != 1 or not isinstance(tokens[0], list) or not tokens[0]:
            raise ParseError("Invalid header field list")
        names = []
        for t in tokens[0]:
            if isinstance(t, list):
                raise ParseError("Invalid header field name")
            raw = t if isinstance(t, str) else t.decode("ascii", "replace")
            if not raw or any(c <= " " or c == ":" or c > "~" for c in raw):
                raise ParseError("Invalid header field name")
            names.append(raw.upper())
        fields = tuple(names)
    elif sp:
        raise ParseError("Invalid section")
    return tuple(part), specifier, fields
