"""Byte-exact BODY[section] extraction (RFC 3501 §6.4.5).

A section is ``[part-numbers][.specifier]``: ``HEADER``, ``HEADER.FIELDS
(names)``, ``HEADER.FIELDS.NOT (names)``, ``TEXT``, ``MIME`` or nothing.
The result is the stored bytes of that piece of the message; a part that
does not exist gives ``b""`` (RFC 3501: "an empty string").

Part numbers follow RFC 3501 §6.4.5: ``1`` of a non-multipart message is
its body; inside a message/rfc822 part, numbers continue with the
encapsulated message's parts; HEADER/TEXT after part numbers need a
message/rfc822 part and address the encapsulated message; MIME is the
part's own MIME header.  Never raises for a valid :class:`SectionSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsuite.mime.structure import MULTIPART, RFC822, Part, iter_fields

SPECIFIERS = ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")
_SECTION_RE = re.compile(
    r"^((?:[1-9][0-9]*)(?:\.[1-9][0-9]*)*)?(?:^|\.|$)"
    r"(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?"
    r"(?:\s*\((.*)\))?$",
    re.IGNORECASE | re.DOTALL,
)


class SectionError(ValueError):
    """The section text is not valid RFC 3501 syntax."""


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A parsed section: part numbers, upper-case specifier, field names."""

    part: tuple[int, ...] = ()
    specifier: str = ""
    fields: tuple[str, ...] = ()


def parse_section(text: str) -> SectionSpec:
    """Parse the text between the brackets, e.g. ``1.2.HEADER.FIELDS (To)``."""
    m = _SECTION_RE.match(text.strip())
    if m is None:
        raise SectionError("Invalid section")
    numbers, spec, names = m.group(1), (m.group(2) or "").upper(), m.group(3)
    if (names is not None) != spec.startswith("HEADER.FIELDS"):
        raise SectionError("Invalid section")
    if spec == "MIME" and not numbers:
        raise SectionError("Invalid section")
    fields: tuple[str, ...] = ()
    if names is not None:
        fields = tuple(n.strip('"').upper() for n in names.split())
        if not fields:
            raise SectionError("Invalid section")
    part = tuple(int(x) for x in numbers.split(".")) if numbers else ()
    return SectionSpec(part, spec, fields)


def find_part(root: Part, numbers: tuple[int, ...]) -> Part | None:
    """The part addressed by ``numbers`` (RFC 3501 §6.4.5), or None."""
    part: Part | None = root
    for i, num in enumerate(numbers):
        if part is None:
            return None
        more = i + 1 < len(numbers)
        if part.flags & MULTIPART:
            part = part.children[num - 1] if 0 < num <= len(part.children) else None
        elif num != 1 or (more and not part.flags & RFC822):
            part = None
        if part is not None and more and part.flags & RFC822 and part.children:
            part = part.children[0]
    return part


def header_fields(
    raw: bytes, part: Part, names: tuple[str, ...], exclude: bool, add_eoh: bool = False
) -> bytes:
    """The header lines of ``part`` whose names are (not) in ``names``.

    Lines keep their bytes and order; the blank line that ends the header
    is added when the header had one, or always with ``add_eoh``.
    """
    wanted = {n.lower() for n in names}
    out = []
    for name, _value, start, end in iter_fields(raw, part.start, part.body_start):
        if (name.lower() in wanted) != exclude:
            out.append(raw[start:end])
    eoh = header_eoh(raw[part.start : part.body_start])
    if eoh or add_eoh:
        out.append(eoh or b"\r\n")
    return b"".join(out)


def header_eoh(header: bytes) -> bytes:
    """The blank line ending ``header`` (``b"\\r\\n"`` or ``b"\\n"``), or ``b""``."""
    if header.endswith(b"\r\n"):
        eoh, rest = b"\r\n", header[:-2]
    elif header.endswith(b"\n"):
        eoh, rest = b"\n", header[:-1]
    else:
        return b""
    return eoh if (not rest or rest.endswith(b"\n")) else b""


def section(raw: bytes, part: Part, spec: SectionSpec | str) -> bytes:
    """The bytes of BODY[``spec``] of the message ``raw`` whose root is ``part``.

    Partial fetches are applied by the caller with :func:`partial`.
    Raises :class:`SectionError` only when ``spec`` is a string that does
    not parse.
    """
    if isinstance(spec, str):
        spec = parse_section(spec)
    target = find_part(part, spec.part) if spec.part else part
    if target is None:
        return b""
    kind = spec.specifier
    if kind == "":
        if not spec.part:
            return raw
        return raw[target.body_start : target.end]
    if kind == "MIME":
        return raw[target.start : target.body_start]
    if spec.part:
        if not target.flags & RFC822 or not target.children:
            return b""
        target = target.children[0]
    if kind == "HEADER":
        return raw[target.start : target.body_start]
    if kind == "TEXT":
        return raw[target.body_start : target.end]
    exclude = kind == "HEADER.FIELDS.NOT"
    # The root's HEADER.FIELDS always ends with a blank line (as the
    # reference server answers it); elsewhere only when the header has one.
    return header_fields(raw, target, spec.fields, exclude, not exclude and not spec.part)


def partial(data: bytes, origin: int, count: int) -> bytes:
    """``<origin.count>`` of RFC 3501 §6.4.5: at most ``count`` octets."""
    if origin >= len(data):
        return b""
    return data[origin : origin + count]
