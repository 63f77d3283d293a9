"""Content-Transfer-Encoding decoding, BINARY conversion, RFC 2047 words.

* :func:`binary_section` -- BINARY[section] of RFC 3516: the part with
  base64 and quoted-printable bodies decoded.  For a multipart or
  message/rfc822 part the encapsulated parts are converted too, and the
  MIME header of each converted part says ``Content-Transfer-Encoding:
  binary`` (as the reference server does).  Raises :class:`BinaryError`
  (``code`` ``"UNKNOWN-CTE"``) for an unknown transfer encoding or data
  that does not decode; the IMAP layer answers ``NO [UNKNOWN-CTE]``.
* :func:`decode_body` -- lenient decoding for SEARCH (never raises).
* :func:`decode_header_value` -- RFC 2047 encoded words to text.
* :func:`to_text` -- bytes in a MIME charset to ``str`` (never raises).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from mailsuite.mime.rfc822 import Rfc822Parser
from mailsuite.mime.structure import Part, iter_fields

CTE_78BIT = "78bit"
CTE_BINARY = "binary"
CTE_BASE64 = "base64"
CTE_QP = "qp"
CTE_UNKNOWN = "unknown"

_CTE_NAMES = {
    "7bit": CTE_78BIT,
    "8bit": CTE_78BIT,
    "binary": CTE_BINARY,
    "base64": CTE_BASE64,
    "quoted-printable": CTE_QP,
}


class BinaryError(Exception):
    """BINARY conversion failed; ``code`` is the IMAP response code."""

    def __init__(self, text: str, code: str = "UNKNOWN-CTE") -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def parse_cte(value: str) -> str:
    """Classify a Content-Transfer-Encoding value (RFC 2045 §6.1)."""
    parser = Rfc822Parser(value)
    parser.skip_lwsp()
    out: list[str] = []
    parser.parse_mime_token(out)
    return _CTE_NAMES.get(out[0].lower(), CTE_UNKNOWN)


def part_cte(raw: bytes, part: Part) -> str:
    """The transfer encoding named in ``part``'s header (the last one wins).

    Unlike BODYSTRUCTURE this ignores whether the part is MIME, as decoding
    does in the reference server.
    """
    cte = CTE_78BIT
    for name, value, _s, _e in iter_fields(raw, part.start, part.body_start):
        if name.lower() == "content-transfer-encoding":
            cte = parse_cte(value.split("\n", 1)[0])
    return cte


# ---------------------------------------------------------------------------
# quoted-printable (RFC 2045 §6.7)

_HEX = frozenset(b"0123456789ABCDEFabcdef")


def qp_decode(data: bytes, strict: bool = True) -> bytes:
    """Decode quoted-printable ``data`` (CRLF or LF line ends; output CRLF).

    White space before a line end is dropped, ``=`` before a line end joins
    lines.  With ``strict``, an ``=`` not followed by two hex digits or a
    line end, or a CR not followed by LF, raises :class:`BinaryError`;
    otherwise such bytes are kept as they are.
    """
    out = bytearray()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for idx, line in enumerate(lines):
        has_lf = idx < last
        if has_lf and line.endswith(b"\r"):
            line = line[:-1]
        text = line.rstrip(b" \t")
        soft = text.endswith(b"=")
        if soft:
            text = text[:-1]
            if not has_lf:
                if strict:
                    raise BinaryError("Invalid quoted-printable data")
                text += b"="
        _qp_text(text, out, strict)
        if has_lf and not soft:
            out += b"\r\n"
    return bytes(out)


def _qp_text(text: bytes, out: bytearray, strict: bool) -> None:
    if strict and b"\r" in text:
        raise BinaryError("Invalid quoted-printable data")
    i = 0
    n = len(text)
    while i < n:
        j = text.find(b"=", i)
        if j < 0:
            out += text[i:]
            return
        out += text[i:j]
        if j + 2 < n and text[j + 1] in _HEX and text[j + 2] in _HEX:
            out.append(int(text[j + 1 : j + 3], 16))
            i = j + 3
        else:
            if strict:
                raise BinaryError("Invalid quoted-printable data")
            out.append(61)
            i = j + 1


# ---------------------------------------------------------------------------
# base64 (RFC 2045 §6.8)

_B64_WS = re.compile(rb"[ \t\r\n]+")
_B64_STRICT = re.compile(rb"^[A-Za-z0-9+/]*(?:={0,2})$")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]+")


def b64_decode(data: bytes, strict: bool = True) -> bytes:
    """Decode base64 ``data``; white space anywhere is ignored.

    With ``strict`` any other invalid character, bad padding or a partial
    final quantum raises :class:`BinaryError`; otherwise invalid characters
    are skipped and decoding stops at the first ``=``.
    """
    compact = _B64_WS.sub(b"", data)
    if strict:
        if _B64_STRICT.match(compact) is None or len(compact) % 4:
            raise BinaryError("Invalid base64 data")
    else:
        compact = _B64_JUNK.sub(b"", compact.split(b"=", 1)[0])
        if len(compact) % 4 == 1:
            compact = compact[:-1]
        compact += b"=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact)
    except (binascii.Error, ValueError) as e:
        if strict:
            raise BinaryError("Invalid base64 data") from e
        return b""


# ---------------------------------------------------------------------------
# BINARY[section]


def _cte_binary_header(raw: bytes, part: Part) -> bytes:
    """``part``'s header without Content-Transfer-Encoding, plus ``binary``."""
    out = []
    for name, _value, start, end in iter_fields(raw, part.start, part.body_start):
        if name.lower() != "content-transfer-encoding":
            out.append(raw[start:end])
    header = raw[part.start : part.body_start]
    from mailsuite.mime.sections import header_eoh

    eoh = header_eoh(header)
    if eoh:
        out.append(b"Content-Transfer-Encoding: binary\r\n")
        out.append(eoh)
    return b"".join(out)


class _Binary:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.out: list[bytes] = []
        self.converted = False
        self.has_nuls = False

    def add(self, part: Part, include_header: bool) -> None:
        raw = self.raw
        cte = part_cte(raw, part)
        if b"\x00" in raw[part.start : part.body_start]:
            self.has_nuls = True
        if cte == CTE_UNKNOWN:
            raise BinaryError("Unknown Content-Transfer-Encoding")
        converting = cte in (CTE_BASE64, CTE_QP)
        if include_header:
            if converting:
                self.out.append(_cte_binary_header(raw, part))
            else:
                self.out.append(raw[part.start : part.body_start])
        if part.children:
            pos = part.body_start
            for child in part.children:
                self.out.append(raw[pos : child.start])
                self.add(child, True)
                pos = child.end
            self.out.append(raw[pos : part.end])
            return
        body = raw[part.body_start : part.end]
        if not body:
            return
        if cte == CTE_BASE64:
            self.out.append(b64_decode(body))
            self.converted = True
        elif cte == CTE_QP:
            self.out.append(qp_decode(body))
            self.converted = True
        else:
            if b"\x00" in body:
                self.has_nuls = True
            self.out.append(body)


def binary_part(raw: bytes, part: Part, include_header: bool) -> tuple[bytes, bool]:
    """Decoded bytes of ``part`` and whether a literal8 is needed.

    The flag is True when something was decoded or NUL bytes are present
    (the reference server then answers with ``~{n}``).
    """
    conv = _Binary(raw)
    conv.add(part, include_header)
    return b"".join(conv.out), conv.converted or conv.has_nuls


def binary_section(raw: bytes, root: Part, numbers: tuple[int, ...]) -> tuple[bytes, bool]:
    """BINARY[numbers] (RFC 3516 §4): see :func:`binary_part`.

    An empty ``numbers`` means the whole message; a missing part gives
    ``(b"", False)``.  Raises :class:`BinaryError`.
    """
    from mailsuite.mime.sections import find_part

    if not numbers:
        return binary_part(raw, root, True)
    part = find_part(root, numbers)
    if part is None:
        return b"", False
    return binary_part(raw, part, False)


def binary_size(raw: bytes, root: Part, numbers: tuple[int, ...]) -> int:
    """BINARY.SIZE[numbers] (RFC 3516 §4.2).  Raises :class:`BinaryError`.

    Like the reference server, the whole message is converted first, so a
    part that cannot be decoded anywhere in the message is an error.
    """
    binary_part(raw, root, True)
    return len(binary_section(raw, root, numbers)[0])


# ---------------------------------------------------------------------------
# text for SEARCH


def decode_body(raw: bytes, part: Part) -> bytes:
    """The leniently decoded body of a leaf ``part`` (never raises)."""
    body = raw[part.body_start : part.end]
    cte = part_cte(raw, part)
    if cte == CTE_BASE64:
        return b64_decode(body, strict=False)
    if cte == CTE_QP:
        return qp_decode(body, strict=False)
    return body


def to_text(data: bytes, charset: str | None) -> str:
    """``data`` in ``charset`` as text; unknown charsets and bad bytes never raise."""
    name = (charset or "utf-8").strip().strip('"').lower() or "utf-8"
    if name in ("us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        name = "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    try:
        return data.decode(name, errors="replace")
    except (LookupError, ValueError):  # pragma: no cover - codec quirks
        return data.decode("utf-8", errors="replace")


_WORD_RE = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_GAP_RE = re.compile(r"\?=[ \t\r\n]+=\?")


def _decode_word(charset: str, enc: str, text: str) -> str | None:
    charset = charset.split("*", 1)[0]
    data = text.encode("latin-1", errors="replace")
    if enc in "Bb":
        try:
            raw = base64.b64decode(data + b"=" * (-len(data) % 4), validate=False)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = re.sub(
            rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" ")
        )
    return to_text(raw, charset)


def decode_header_value(value: str) -> str:
    """Decode RFC 2047 encoded words in a latin-1 header value to text.

    Text outside encoded words is taken as UTF-8 (8-bit headers, RFC 6532)
    when valid, else latin-1; white space between adjacent encoded words is
    dropped (RFC 2047 §6.2).  Never raises.
    """
    raw_bytes = value.encode("latin-1", errors="replace")
    try:
        plain = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        plain = value
    if "=?" not in plain:
        return plain
    out: list[str] = []
    pos = 0
    last_was_word = False
    for m in _WORD_RE.finditer(plain):
        gap = plain[pos : m.start()]
        decoded = _decode_word(m.group(1), m.group(2), m.group(3))
        if decoded is None:
            out.append(gap + m.group(0))
            last_was_word = False
        else:
            if not (last_was_word and gap.strip(" \t\r\n") == ""):
                out.append(gap)
            out.append(decoded)
            last_was_word = True
        pos = m.end()
    out.append(plain[pos:])
    return "".join(out)
