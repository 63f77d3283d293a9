"""AUTHORIZATION-state commands: CAPA, STLS, USER, PASS, AUTH.

* CAPA — RFC 2449 §5, with the capabilities of §6 (and RFC 3206's
  AUTH-RESP-CODE).  What is listed depends on the state and on TLS.
* STLS — RFC 2595 §4: plain port only, before login; buffered plaintext
  sent after the command is discarded (``LineProtocol.start_tls``).
* USER/PASS — RFC 1939 §7; AUTH — RFC 5034 with PLAIN and LOGIN through
  ``mailsuite.users.sasl``, initial response included ("=" is empty).
  Both only over TLS unless ``auth.allow_plaintext`` (RFC 2595 §2.2).
  APOP is never offered (DESIGN.md §2: needs plaintext-equivalent storage);
  the greeting carries no timestamp, so clients do not try it.

A successful login opens the maildrop snapshot (``maildrop.load``) and
enters TRANSACTION.  Failures answer ``-ERR [AUTH]``; the throttle lives in
``context.auth``; after ``MAX_AUTH_FAILURES`` the connection is closed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from mailsuite.errors import ErrorKind, MailError
from mailsuite.pop3 import maildrop, replies
from mailsuite.pop3.states import AUTHORIZATION
from mailsuite.users import sasl

if TYPE_CHECKING:
    from mailsuite.pop3.server import POP3Server

log = Logger()

MAX_AUTH_FAILURES = 3
MAX_USER_LENGTH = 255


def capabilities(session: POP3Server) -> list[str]:
    """The CAPA list for the session's current state (RFC 2449 §6)."""
    cfg = session.config
    caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if session.state == AUTHORIZATION:
        if session.can_stls():
            caps.append("STLS")
        if session.plaintext_allowed():
            caps += ["USER", "SASL " + " ".join(sasl.MECHANISMS)]
    if cfg.expire_days >= 0:
        caps.append(f"EXPIRE {cfg.expire_days}")
    if cfg.login_delay >= 0:
        caps.append(f"LOGIN-DELAY {cfg.login_delay}")
    caps.append("IMPLEMENTATION mailsuite")
    return caps


def cmd_capa(session: POP3Server, arg: str) -> None:
    session.send(replies.multiline("+OK Capability list follows", capabilities(session)))


def cmd_stls(session: POP3Server, arg: str) -> None:
    if not session.can_stls():
        session.reply("-ERR STLS not available now")
        return
    session.reply("+OK Begin TLS negotiation now")
    session.pending_user = None
    session.start_tls()


def _refuse_plaintext(session: POP3Server) -> bool:
    if session.plaintext_allowed():
        return False
    session.reply("-ERR Plaintext authentication is disabled here: use STLS first")
    return True


def cmd_user(session: POP3Server, arg: str) -> None:
    if _refuse_plaintext(session):
        return
    if not arg or len(arg) > MAX_USER_LENGTH:
        session.reply("-ERR Invalid user name")
        return
    session.pending_user = arg
    session.reply("+OK Send PASS")  # same answer for every name (no user probing)


def cmd_pass(session: POP3Server, arg: str) -> defer.Deferred[Any] | None:
    if _refuse_plaintext(session):
        return None
    user, session.pending_user = session.pending_user, None
    if user is None:
        session.reply("-ERR Send USER first")
        return None
    return login(session, user, arg)


def cmd_auth(session: POP3Server, arg: str) -> defer.Deferred[Any] | None:
    """RFC 5034 §4.  ``AUTH`` alone lists the mechanisms (an RFC 1734-era
    convention some clients still use)."""
    if not arg:
        names = list(sasl.MECHANISMS) if session.plaintext_allowed() else []
        session.send(replies.multiline("+OK Mechanisms follow", names))
        return None
    if _refuse_plaintext(session):
        return None
    name, _, initial = arg.partition(" ")
    mech = sasl.start(name)  # MailError(BAD_INPUT) for an unknown mechanism
    data = None
    if initial:
        try:
            data = sasl.decode_response(initial.encode("utf-8", "surrogateescape"))
        except sasl.Cancelled:
            session.reply("-ERR Authentication cancelled")
            return None
    return _step(session, mech, data)


def sasl_continue(session: POP3Server, line: bytes) -> defer.Deferred[Any] | None:
    """A client line during an AUTH exchange (RFC 5034 §4: "*" cancels)."""
    mech, session.sasl = session.sasl, None
    try:
        data = sasl.decode_response(line.strip())
    except sasl.Cancelled:
        session.reply("-ERR Authentication cancelled")
        return None
    except MailError as e:
        session.reply(replies.error_line(e))
        return None
    return _step(session, mech, data)


def _step(session: POP3Server, mech: Any, data: bytes | None) -> defer.Deferred[Any] | None:
    try:
        result = mech.step(data)
    except MailError as e:
        if e.kind is ErrorKind.BAD_INPUT:
            session.reply(replies.error_line(e))
        else:
            _auth_failed(session, e)
        return None
    if isinstance(result, sasl.Challenge):
        session.sasl = mech
        session.reply("+ " + sasl.encode_challenge(result.data).decode("ascii"))
        return None
    return login(session, result.username, result.password)


@defer.inlineCallbacks
def login(
    session: POP3Server, username: str, password: str
) -> Generator[defer.Deferred[Any], Any, None]:
    """Check the credentials, enforce LOGIN-DELAY, open the maildrop, enter TRANSACTION."""
    ctx = session.factory.context
    try:
        user = yield ctx.auth.login(username, password, session.peer_host, "pop3")
    except MailError as e:
        _auth_failed(session, e)
        return
    if session.disconnecting:
        return
    delay = session.factory.login_delay
    if delay is not None and not delay.allowed(user.address):
        session.reply("-ERR [LOGIN-DELAY] Minimum time between logins not yet elapsed")
        return
    try:
        drop = yield ctx.runner.run(maildrop.load, ctx.store, user.address)
    except MailError as e:
        log.warn(
            "{cid} maildrop of {user} not opened: {err!r}",
            cid=session.conn_id,
            user=user.address,
            err=e,
        )
        session.reply(replies.error_line(e))
        return
    if session.disconnecting:  # gone while the maildrop opened: nothing to keep
        ctx.runner.run(maildrop.release, drop.mailbox)
        return
    if delay is not None:
        delay.record(user.address)
    session.enter_transaction(user, drop)
    count, size = drop.stat()
    session.reply(f"+OK Logged in, {count} messages ({size} octets)")


def _auth_failed(session: POP3Server, e: MailError) -> None:
    session.auth_failures += 1
    log.info("{cid} POP3 login failed: {kind}", cid=session.conn_id, kind=e.kind.name)
    if e.kind in (ErrorKind.AUTH_FAILED, ErrorKind.DISABLED):
        session.reply("-ERR [AUTH] Authentication failed")
    else:
        session.reply(replies.error_line(e))
    if session.auth_failures >= MAX_AUTH_FAILURES:
        session.close()


class LoginDelay:
    """RFC 2449 §6.5 LOGIN-DELAY, enforced per process: a user may log in
    again ``seconds`` after the previous successful login.  ``clock`` is
    an IReactorTime."""

    def __init__(self, seconds: int, clock: Any) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[str, float] = {}

    def allowed(self, address: str) -> bool:
        last = self._last.get(address)
        return last is None or self.clock.seconds() - last >= self.seconds

    def record(self, address: str) -> None:
        now = self.clock.seconds()
        if len(self._last) > 10000:  # forget logins older than the delay
            self._last = {a: t for a, t in self._last.items() if now - t < self.seconds}
        self._last[address] = now
