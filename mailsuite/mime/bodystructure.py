"""BODY and BODYSTRUCTURE rendering (RFC 3501 §7.4.2) from a :class:`Part`.

Shapes follow the reference server, as clients expect: a text part without
a charset gets ``("charset" "us-ascii")``, a missing transfer encoding is
``"7bit"``, parameter names and values keep their case, a message/rfc822
part has envelope, body structure and line count, a multipart without
parts renders one empty text/plain part.  Never raises.
"""

from __future__ import annotations

from typing import Any

from mailsuite.mime.envelope import envelope_text
from mailsuite.mime.imapquote import nstring_nolf, string
from mailsuite.mime.structure import MULTIPART, RFC822, Part

_EMPTY_BODY = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


def _params(params: list[tuple[str, str]] | None, default_charset: bool) -> str:
    if not params and not default_charset:
        return "NIL"
    items = []
    seen_charset = False
    for name, value in params or ():
        if default_charset and name.lower() == "charset":
            seen_charset = True
        items.append(f"{string(name)} {string(value)}")
    if default_charset and not seen_charset:
        items.append('"charset" "us-ascii"')
    return "(" + " ".join(items) + ")"


def _common(c: dict[str, Any]) -> str:
    disp = c.get("dd")
    d = "NIL" if disp is None else f"({string(disp)} {_params(c.get('dp'), False)})"
    langs = c.get("l")
    lang = "NIL" if not langs else "(" + " ".join(string(x) for x in langs) + ")"
    return f" {d} {lang} {nstring_nolf(c.get('lo'))}"


def _multipart(part: Part, out: list[str], ext: bool) -> None:
    c = part.content
    if part.children:
        for child in part.children:
            out.append("(")
            _write(child, out, ext)
            out.append(")")
    else:
        out.append(_EMPTY_BODY + (" NIL NIL NIL NIL)" if ext else ")"))
    out.append(" " + string(c.get("s", "")))
    if ext:
        out.append(" " + _params(c.get("p"), False) + _common(c))


def _leaf(part: Part, out: list[str], ext: bool) -> None:
    c = part.content
    if part.flags & RFC822:
        out.append('"message" "rfc822"')
        text = False
    elif c.get("t") is None:
        out.append('"text" "plain"')
        text = True
    else:
        text = c["t"].lower() == "text"
        out.append(f"{string(c['t'])} {string(c.get('s', ''))}")
    cte = c.get("e")
    out.append(
        f" {_params(c.get('p'), text)} {nstring_nolf(c.get('i'))} {nstring_nolf(c.get('d'))}"
        f" {string(cte) if cte is not None else chr(34) + '7bit' + chr(34)} {part.body_vsize}"
    )
    if text:
        out.append(f" {part.body_lines}")
    elif part.flags & RFC822 and part.children:
        child = part.children[0]
        out.append(f" ({envelope_text(child.env)}) (")
        _write(child, out, ext)
        out.append(f") {part.body_lines}")
    if ext:
        out.append(" " + nstring_nolf(c.get("m")) + _common(c))


def _write(part: Part, out: list[str], ext: bool) -> None:
    if part.flags & MULTIPART:
        _multipart(part, out, ext)
    else:
        _leaf(part, out, ext)


def bodystructure(part: Part, raw: bytes | None = None, extensible: bool = True) -> bytes:
    """``(...)`` BODYSTRUCTURE of ``part`` (BODY when ``extensible`` is False).

    ``raw`` is accepted for symmetry with the other renderers and not read.
    """
    out = ["("]
    _write(part, out, extensible)
    out.append(")")
    return "".join(out).encode("latin-1")
