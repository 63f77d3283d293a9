"""Parsing and normalising mail addresses for the user directory.

Contract: an account or alias address is ``localpart@domain`` where

* the domain is a host name (no address literal), stored as its IDNA
  A-label form (UTS #46 mapping, IDNA 2008), lower-cased;
* the local part is a dot-atom (RFC 5322 §3.2.3, with UTF-8 allowed as in
  RFC 6531 §3.3) of at most 64 octets, lower-cased unless the directory is
  configured to keep case.  A quoted local part (RFC 5321 §4.1.2) whose
  content is a valid dot-atom is treated as that dot-atom.

Every failure raises ``MailError(BAD_ADDRESS, text)``; the text names what is
wrong and may be shown to whoever sent the address.
"""

from __future__ import annotations

import re

import idna

from mailsuite.errors import ErrorKind, MailError

MAX_LOCALPART_OCTETS = 64
MAX_DOMAIN_OCTETS = 253
MAX_ADDRESS_OCTETS = 254

# RFC 5322 atext, plus any non-ASCII character (RFC 6531 UTF8-non-ascii).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")


def _bad(text: str) -> MailError:
    return MailError(ErrorKind.BAD_ADDRESS, text)


def normalise_domain(domain: str) -> str:
    """The A-label form of ``domain``, lower-cased, without a trailing dot.

    Raises BAD_ADDRESS for an empty name, an address literal, a label that is
    not LDH after IDNA conversion, or a name that is too long.
    """
    name = domain.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name or name.startswith("["):
        raise _bad("Invalid domain")
    try:
        if name.isascii():
            ascii_name = name.lower()
        else:
            ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _bad("Invalid domain")
    if len(ascii_name) > MAX_DOMAIN_OCTETS:
        raise _bad("Domain name too long")
    labels = ascii_name.split(".")
    if any(not _LDH_LABEL.fullmatch(label) for label in labels):
        raise _bad("Invalid domain")
    if labels[-1].isdigit():
        raise _bad("Invalid domain")
    return ascii_name


def _unquote(local: str) -> str:
    if len(local) < 2 or not local.endswith('"'):
        raise _bad("Invalid local part")
    out = []
    chars = iter(local[1:-1])
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "")
            if not ch:
                raise _bad("Invalid local part")
        elif ch == '"':
            raise _bad("Invalid local part")
        out.append(ch)
    return "".join(out)


def normalise_localpart(local: str, case_sensitive: bool = False) -> str:
    """The canonical form of a local part (see the module contract)."""
    if local.startswith('"'):
        local = _unquote(local)
    if not local or not _DOT_ATOM.fullmatch(local):
        raise _bad("Invalid local part")
    if any(ch.isspace() or not ch.isprintable() for ch in local):
        raise _bad("Invalid local part")
    if len(local.encode("utf-8")) > MAX_LOCALPART_OCTETS:
        raise _bad("Local part too long")
    return local if case_sensitive else local.lower()


def split(address: str) -> tuple[str, str]:
    """``(localpart, domain)`` as written (not normalised); the last ``@`` splits."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise _bad("Invalid address")
    return local, domain


def normalise(address: str, case_sensitive: bool = False) -> str:
    """The canonical ``localpart@domain`` form of ``address``."""
    if not isinstance(address, str) or len(address) > 4 * MAX_ADDRESS_OCTETS:
        raise _bad("Invalid address")
    local, domain = split(address)
    result = f"{normalise_localpart(local, case_sensitive)}@{normalise_domain(domain)}"
    if len(result.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise _bad("Address too long")
    return result


def normalise_alias_source(source: str, case_sensitive: bool = False) -> str:
    """Like :func:`normalise`, but also accepts a catch-all ``@domain``."""
    if source.strip().startswith("@"):
        return "@" + normalise_domain(source.strip()[1:])
    return normalise(source, case_sensitive)


def domain_of(address: str) -> str:
    """The domain part of an already normalised address (or ``@domain``)."""
    return address.rpartition("@")[2]


def strip_subaddress(localpart: str, separator: str) -> str | None:
    """The local part without its ``+tag`` (RFC 5233), or None if it has none.

    Returns None when ``separator`` is "" (subaddressing disabled) or when
    removing the tag would leave nothing.
    """
    if not separator:
        return None
    base, sep, _tag = localpart.partition(separator)
    if not sep or not base:
        return None
    return base
