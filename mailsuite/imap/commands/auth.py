"""Not-authenticated state: STARTTLS, AUTHENTICATE, LOGIN (RFC 3501 §6.2),
SASL-IR (RFC 4959), LOGINDISABLED before TLS (RFC 3501 §6.2.3, §7.2.1).

Passwords and AUTHENTICATE data are never logged.  Credentials are checked
by ``context.auth.login`` (off the reactor thread, throttled).
"""

from __future__ import annotations

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
from mailsuite.users import sasl

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession


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
    """RFC 3501 §6.2.2 with SASL-IR (RFC 4959); mechanisms from
    :mod:`mailsuite.users.sasl` (PLAIN, LOGIN).  ``*`` cancels (BAD)."""
    expect_count(req.args, 1, 2)
    name = atom(req.args[0], "mechanism").upper()
    if name not in sasl.MECHANISMS:
        return no("Unsupported mechanism", "CANNOT")
    if not s.plaintext_ok():
        return no("Use STARTTLS first", "PRIVACYREQUIRED")
    mech = sasl.start(name)
    initial = None
    if len(req.args) == 2:
        token = req.args[1]
        if not isinstance(token, str):
            raise ParseError("Invalid initial response")
        try:
            initial = sasl.decode_response(token.encode("ascii"))
        except (MailError, sasl.Cancelled):
            return bad("Invalid SASL response")
    return _step(s, req, mech, initial)


def _step(s: IMAPSession, req: Request, mech: Any, response: bytes | None) -> Any:
    try:
        out = mech.step(response)
    except MailError as e:
        if e.kind is ErrorKind.AUTH_FAILED:
            return no("Authentication failed", "AUTHENTICATIONFAILED")
        return bad("Invalid SASL response")
    if isinstance(out, sasl.Challenge):
        s.send_line(b"+ " + sasl.encode_challenge(out.data))
        s.line_hook = lambda line: _on_line(s, req, mech, line)
        return CONTINUE
    return _check(s, out.username, out.password)


def _on_line(s: IMAPSession, req: Request, mech: Any, line: bytes | None) -> Any:
    s.line_hook = None
    try:
        if line is None:
            raise MailError(ErrorKind.BAD_INPUT)
        response = sasl.decode_response(line.strip())
    except sasl.Cancelled:
        result: Any = bad("Authentication cancelled")
    except MailError:
        result = bad("Invalid SASL response")
    else:
        result = _step(s, req, mech, response)
    if result is CONTINUE:
        return None
    if isinstance(result, defer.Deferred):
        return result.addCallback(s.complete, req)
    return s.complete(result, req)


COMMANDS = (
    Command("STARTTLS", starttls, NOT_AUTHENTICATED),
    Command("LOGIN", login, NOT_AUTHENTICATED),
    Command("AUTHENTICATE", authenticate, NOT_AUTHENTICATED),
)
