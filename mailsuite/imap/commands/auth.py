"""Not-authenticated state: STARTTLS, AUTHENTICATE, LOGIN (RFC 3501 §6.2),
SASL-IR (RFC 4959), LOGINDISABLED before TLS (RFC 3501 §6.2.3, §7.2.1).

Passwords and AUTHENTICATE data are never logged.  Credentials are checked
by ``context.auth.login`` (off the reactor thread, throttled).
"""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap.command import (
    CONTINUE,
    NOT_AUTHENTICATED,
    Command,
    Request,
    Result,
    bad,
    no,
    ok,
)
from mailsuite.imap.parser import ParseError, astring_text, atom, expect_count

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_MECHANISMS = ("PLAIN",)


def starttls(s: IMAPSession, req: Request) -> Result | object:
    """RFC 3501 §6.2.1: the tagged OK goes out in plaintext, then TLS starts;
    anything the client pipelined after STARTTLS is discarded."""
    expect_count(req.args, 0)
    if not s.can_starttls():
        return bad("TLS is not available here" if not s.tls_active else "TLS already active")
    s.send_line(ok("Begin TLS negotiation now").render(req.tag))
    s.start_tls()
    return CONTINUE


def login(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.2.3."""
    expect_count(req.args, 2)
    if not s.plaintext_ok():
        return no("Use STARTTLS first", "PRIVACYREQUIRED")
    user = astring_text(req.args[0], "user name")
    password = astring_text(req.args[1], "password")
    return _check(s, user, password)


def _check(s: IMAPSession, user: str, password: str) -> defer.Deferred[Result]:
    d: defer.Deferred[Any] = s.context.auth.login(user, password, s.peer_host, "imap")

    def success(record: Any) -> Any:
        account = s.context.store.account(record.address)
        d2 = s.run(account.ensure_created)
        d2.addCallback(lambda _: s.logged_in(record, account))
        d2.addCallback(lambda _: ok("Logged in", "CAPABILITY " + " ".join(s.capabilities())))
        return d2

    def failure(f: Failure) -> Result:
        err = f.value
        kind = err.kind if isinstance(err, MailError) else None
        if kind in (ErrorKind.AUTH_FAILED, ErrorKind.DISABLED):
            s.log.info("{cid} login failed", cid=s.conn_id)
            return no("Authentication failed", "AUTHENTICATIONFAILED")
        if kind is ErrorKind.THROTTLED:
            s.log.info("{cid} login throttled", cid=s.conn_id)
            return no("Too many failures, try again later", "UNAVAILABLE")
        return s.failure_result(err if isinstance(err, BaseException) else Exception())

    d.addCallbacks(success, failure)
    return d


def authenticate(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.2.2 with SASL-IR (RFC 4959); mechanism PLAIN (RFC 4616)."""
    expect_count(req.args, 1, 2)
    mech = atom(req.args[0], "mechanism").upper()
    if mech not in _MECHANISMS:
        return no("Unsupported mechanism", "CANNOT")
    if not s.plaintext_ok():
        return no("Use STARTTLS first", "PRIVACYREQUIRED")
    if len(req.args) == 2:
        initial = req.args[1]
        if not isinstance(initial, str):
            raise ParseError("Invalid initial response")
        return _plain(s, b"" if initial == "=" else initial.encode("ascii"))

    def on_line(line: bytes) -> Any:
        s.line_hook = None
        if line.strip() == b"*":
            result: Any = bad("Authentication cancelled")
        else:
            result = _plain(s, line.strip())
        if isinstance(result, defer.Deferred):
            result.addCallback(s.complete, req)
            return result
        return s.complete(result, req)

    s.line_hook = on_line
    s.send_line("+ ")
    return CONTINUE


def _plain(s: IMAPSession, b64: bytes) -> Any:
    try:
        raw = binascii.a2b_base64(b64) if b64 else b""
        authzid, authcid, password = raw.split(b"\0")
        user = authcid.decode("utf-8")
        secret = password.decode("utf-8")
        if authzid and authzid != authcid:
            return no("Authorization identity not allowed", "AUTHORIZATIONFAILED")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return bad("Invalid SASL response")
    return _check(s, user, secret)


COMMANDS = (
    Command("STARTTLS", starttls, NOT_AUTHENTICATED),
    Command("LOGIN", login, NOT_AUTHENTICATED),
    Command("AUTHENTICATE", authenticate, NOT_AUTHENTICATED),
)
