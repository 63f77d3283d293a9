"""AUTH (RFC 4954) with the SASL mechanisms of :mod:`mailsuite.users.sasl`.

* Offered and accepted only on the submission roles, and only over TLS
  unless ``auth.allow_plaintext`` is set (538 5.7.11 otherwise).  The MX
  role has no AUTH at all (503 5.5.1).
* ``AUTH mech [initial-response]``; ``=`` is an empty initial response
  (§4).  Challenges are ``334 <base64>``; the client's ``*`` cancels (501).
  Malformed base64 ends the exchange with 501 5.5.2.
* Credentials are checked by ``context.auth.login`` (off the reactor
  thread, throttled per source): 235 2.7.0, or 535 5.7.8 for wrong
  credentials and disabled accounts alike, 454 4.7.0 when throttled.
* Neither the responses nor the password are ever logged; the log line
  names the mechanism, the outcome and the user name tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.errors import MailError
from mailsuite.interfaces import UserRecord
from mailsuite.smtp import replies
from mailsuite.users import sasl

if TYPE_CHECKING:
    from mailsuite.smtp.session import SMTPSession


def mechanisms() -> tuple[str, ...]:
    return sasl.MECHANISMS


def cmd_auth(session: SMTPSession, args: str) -> defer.Deferred[Any] | None:
    if not session.is_submission:
        session.reply(replies.AUTH_NOT_ENABLED)
        return None
    if not session.auth_allowed():
        session.reply(replies.ENCRYPTION_REQUIRED)
        return None
    if session.user is not None:
        session.reply(replies.ALREADY_AUTH)
        return None
    parts = args.split(" ")
    if len(parts) > 2 or not parts[0]:
        session.reply(replies.BAD_SYNTAX)
        return None
    try:
        mech = sasl.start(parts[0])
    except MailError:
        session.reply(replies.UNKNOWN_MECHANISM)
        return None
    exchange = AuthExchange(session, mech)
    if len(parts) == 1:
        return exchange.step(None)
    return exchange.line(parts[1].encode("ascii", "replace"))


class AuthExchange:
    """One SASL exchange; while it runs, every input line is a response."""

    def __init__(self, session: SMTPSession, mech: Any) -> None:
        self.session = session
        self.mech = mech

    def line(self, line: bytes) -> defer.Deferred[Any] | None:
        """A client response line (RFC 4954 §4)."""
        session = self.session
        try:
            data = sasl.decode_response(line)
        except sasl.Cancelled:
            session.exchange = None
            session.reply(replies.AUTH_CANCELLED)
            return None
        except MailError:
            session.exchange = None
            session.reply(replies.AUTH_BAD_BASE64)
            return None
        return self.step(data)

    def step(self, response: bytes | None) -> defer.Deferred[Any] | None:
        session = self.session
        try:
            out = self.mech.step(response)
        except MailError as e:
            session.exchange = None
            self._log_failure(e)
            session.reply(replies.auth_error(e))
            return None
        if isinstance(out, sasl.Challenge):
            session.exchange = self
            session.send_line(b"334 " + sasl.encode_challenge(out.data))
            return None
        session.exchange = None
        d = session.context.auth.login(out.username, out.password, session.peer_host, "smtp")
        d.addCallbacks(self._succeeded, self._failed, errbackArgs=(out.username,))
        return d  # type: ignore[no-any-return]

    def _succeeded(self, user: UserRecord) -> None:
        session = self.session
        session.log.info(
            "{cid} AUTH {mech} ok user={user}",
            cid=session.conn_id,
            mech=self.mech.name,
            user=user.address,
        )
        session.user = user
        session.reply(replies.AUTH_OK)

    def _failed(self, failure: Failure, username: str) -> None:
        error = failure.value
        if not isinstance(error, MailError):
            self.session.log.failure("{cid} AUTH error", failure, cid=self.session.conn_id)
        self._log_failure(error, username)
        self.session.reply(replies.auth_error(error))

    def _log_failure(self, error: BaseException | None, username: str = "") -> None:
        kind = error.kind.value if isinstance(error, MailError) else "internal"
        self.session.log.info(
            "{cid} AUTH {mech} failed ({kind}) user={user!r}",
            cid=self.session.conn_id,
            mech=self.mech.name,
            kind=kind,
            user=username,
        )
