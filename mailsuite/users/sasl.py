"""SASL server mechanisms PLAIN and LOGIN, shared by SMTP, POP3 and IMAP.

Protocols do the framing (``334``/``+`` continuation lines, RFC 4954 §4,
RFC 5034 §4, RFC 3501 §6.2.2 / RFC 4959) and use this module for the rest::

    mech = sasl.start(name)                # MailError(BAD_INPUT) if unknown
    out = mech.step(initial_or_None)       # None: the client sent no initial response
    while isinstance(out, sasl.Challenge):
        send(sasl.encode_challenge(out.data))
        out = mech.step(sasl.decode_response(read_line()))   # may raise Cancelled
    authenticator.login(out.username, out.password, peer, protocol)

An initial response of ``=`` means "empty" (RFC 4954 §4, RFC 4959 §3);
:func:`decode_response` turns it (and an empty line) into ``b""``.
Malformed client data raises ``MailError(BAD_INPUT)``; an authorization
identity other than the authentication identity raises
``MailError(AUTH_FAILED)`` (we do not support acting as another user).

CRAM-MD5, DIGEST-MD5 and APOP are deliberately absent: they need
plaintext-equivalent password storage.
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple, Protocol

from mailsuite.errors import ErrorKind, MailError

#: The mechanisms offered, in the order to advertise them.
MECHANISMS = ("PLAIN", "LOGIN")

#: Largest decoded response accepted (user names and passwords are far smaller).
MAX_RESPONSE = 8192


class Challenge(NamedTuple):
    """The server needs another response; send ``data`` (base64-encoded)."""

    data: bytes


class Credentials(NamedTuple):
    """The exchange is complete; check these."""

    username: str
    password: str


class Cancelled(Exception):
    """The client answered ``*`` (RFC 4954 §4: reply 501; IMAP: BAD)."""


class Mechanism(Protocol):
    name: str

    def step(self, response: bytes | None) -> Challenge | Credentials: ...


def _bad(text: str = "Invalid SASL response") -> MailError:
    return MailError(ErrorKind.BAD_INPUT, text)


def _text(data: bytes) -> str:
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad()
    if "\0" in value:
        raise _bad()
    return value


class Plain:
    """PLAIN (RFC 4616): one message ``[authzid] NUL authcid NUL passwd``."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._done = False

    def step(self, response: bytes | None) -> Challenge | Credentials:
        if self._done:
            raise _bad("SASL exchange already complete")
        if response is None:  # no initial response: empty challenge (RFC 4616 §2)
            return Challenge(b"")
        self._done = True
        if len(response) > MAX_RESPONSE:
            raise _bad()
        parts = response.split(b"\0")
        if len(parts) != 3:
            raise _bad()
        authzid, authcid, passwd = (_text(p) for p in parts)
        if not authcid or not passwd:
            raise _bad()
        if authzid and authzid.casefold() != authcid.casefold():
            raise MailError(ErrorKind.AUTH_FAILED)
        return Credentials(authcid, passwd)


class Login:
    """LOGIN (draft-murchison-sasl-login): user name, then password.

    An initial response, if any, is the user name.
    """

    name = "LOGIN"

    def __init__(self) -> None:
        self._username: str | None = None
        self._done = False

    def step(self, response: bytes | None) -> Challenge | Credentials:
        if self._done:
            raise _bad("SASL exchange already complete")
        if response is None:
            if self._username is None:
                return Challenge(b"Username:")
            raise _bad()
        if len(response) > MAX_RESPONSE:
            raise _bad()
        value = _text(response)
        if self._username is None:
            if not value:
                raise _bad()
            self._username = value
            return Challenge(b"Password:")
        self._done = True
        if not value:
            raise _bad()
        return Credentials(self._username, value)


_FACTORIES: dict[str, type[Plain] | type[Login]] = {"PLAIN": Plain, "LOGIN": Login}


def start(name: str) -> Mechanism:
    """A new exchange for mechanism ``name`` (case-insensitive)."""
    factory = _FACTORIES.get(name.upper())
    if factory is None:
        raise MailError(ErrorKind.BAD_INPUT, "Unsupported authentication mechanism")
    return factory()


def decode_response(line: bytes) -> bytes:
    """Decode one client response line (without its CRLF).

    ``*`` raises :class:`Cancelled`; ``=`` or an empty line is ``b""``;
    anything but canonical base64 (RFC 4648 §4, padded, no whitespace)
    raises ``MailError(BAD_INPUT)``.
    """
    if line == b"*":
        raise Cancelled()
    if line in (b"", b"="):
        return b""
    if len(line) % 4 or len(line) > (MAX_RESPONSE * 4) // 3 + 4:
        raise _bad("Invalid base64 data")
    try:
        data = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("Invalid base64 data")
    if base64.b64encode(data) != line:  # non-zero pad bits: not canonical
        raise _bad("Invalid base64 data")
    return data


def encode_challenge(data: bytes) -> bytes:
    """The base64 text of a challenge (``b""`` for an empty one)."""
    return base64.b64encode(data)
