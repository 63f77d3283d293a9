"""Reverse-path and forward-path syntax (RFC 5321 §4.1.2, RFC 6531 §3.3).

:func:`parse_path` reads ``<...>`` at the start of a MAIL/RCPT argument and
returns the mailbox and the parameter text after it.  Decisions that keep
the MX role from relaying (DESIGN.md, issue 5):

* Source routes (``<@a,@b:user@c>``) are accepted and ignored as RFC 5321
  §4.1.1.3 and appendix C require; only the final mailbox counts.
* A quoted local part whose content is a valid dot-string is the same
  mailbox as the unquoted one (RFC 5321 §4.1.2) and is unquoted.  Any other
  quoted local part is kept quoted and flagged; the server refuses it as a
  recipient (``"user@remote"@local`` can then never be forwarded).
* A domain with a trailing dot, an empty label or a general address
  literal is a syntax error.  IPv4 and IPv6 literals are accepted
  syntactically (they are never local domains).
* Non-ASCII addresses are legal syntax here; the caller refuses them unless
  the transaction uses SMTPUTF8 (RFC 6531 §3.4).

Errors raise :class:`Refused` carrying the reply to send.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mailsuite.smtp import replies
from mailsuite.smtp.replies import Refused

MAX_PATH_OCTETS = 256  # RFC 5321 §4.5.3.1.3
MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS = 255  # RFC 5321 §4.5.3.1.2

_U = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_U}]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_U}]|\\[\x20-\x7e])*"'
_LABEL = rf"[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_ADL = rf"@{_DOMAIN}(?:,@{_DOMAIN})*:"
_PATH = re.compile(
    rf"<(?:{_ADL})?(?P<local>{_DOT_STRING}|{_QUOTED})@(?P<domain>{_DOMAIN}|{_LITERAL})>"
)
_DOT_STRING_RE = re.compile(_DOT_STRING)


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path.  ``mailbox`` is "" for the null reverse-path ``<>``.

    ``quoted`` is True when the local part had to stay quoted (its content
    is not a dot-string); ``literal`` when the domain is an address literal.
    """

    mailbox: str
    local: str = ""
    domain: str = ""
    quoted: bool = False
    literal: bool = False

    @property
    def is_null(self) -> bool:
        return self.mailbox == ""

    @property
    def ascii(self) -> bool:
        return self.mailbox.isascii()


NULL_PATH = Path("")


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _check_literal(literal: str) -> None:
    inner = literal[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        raise Refused(replies.BAD_ADDRESS) from None


def parse_path(text: str, allow_null: bool) -> tuple[Path, str]:
    """Parse ``<path>`` at the start of ``text``; return it and the rest.

    The rest is "" or starts with a space (the ESMTP parameters).  Raises
    :class:`Refused` for bad syntax, over-long paths, or ``<>`` when
    ``allow_null`` is false.
    """
    if allow_null and text.startswith("<>"):
        rest = text[2:]
        if rest and not rest.startswith(" "):
            raise Refused(replies.BAD_ADDRESS)
        return NULL_PATH, rest
    m = _PATH.match(text)
    if m is None:
        raise Refused(replies.BAD_ADDRESS)
    rest = text[m.end() :]
    if rest and not rest.startswith(" "):
        raise Refused(replies.BAD_ADDRESS)
    local, domain = m.group("local"), m.group("domain")
    literal = domain.startswith("[")
    if literal:
        _check_literal(domain)
    quoted = False
    if local.startswith('"'):
        content = _unquote(local)
        if _DOT_STRING_RE.fullmatch(content):
            local = content
        else:
            quoted = True
    if (
        len(m.group(0).encode()) > MAX_PATH_OCTETS
        or len(local.encode()) > MAX_LOCAL_OCTETS
        or len(domain.encode()) > MAX_DOMAIN_OCTETS
    ):
        raise Refused(replies.BAD_ADDRESS)
    return Path(f"{local}@{domain}", local, domain, quoted, literal), rest


def parse_postmaster(text: str, hostname: str) -> tuple[Path, str] | None:
    """``<Postmaster>`` without a domain (RFC 5321 §4.1.1.3), which every
    server must accept, as ``postmaster@hostname``; None if ``text`` is not it."""
    if text[:12].lower() != "<postmaster>":
        return None
    rest = text[12:]
    if rest and not rest.startswith(" "):
        return None
    return Path(f"postmaster@{hostname}", "postmaster", hostname), rest
