"""The ESMTP server session (RFC 5321) on our line framing.

One :class:`SMTPSession` per connection.  Framing comes from
:class:`mailsuite.protocol.lines.LineProtocol` with ``strict_crlf``: only
CRLF ends a command line, so a bare CR or LF stays inside the line and is
refused here (RFC 5321 §2.3.8).  A command whose handler returns a Deferred
(a recipient lookup, a sender check, AUTH, the commit after DATA) holds all
further input until it fires, so pipelined commands (RFC 2920) are answered
strictly in order whatever the handlers wait for.

Commands are dispatched through :data:`mailsuite.smtp.commands.COMMANDS`,
one handler per command with the states it is allowed in.  Message content
(DATA, BDAT) is received in raw mode by :mod:`mailsuite.smtp.content`.

Errors: every reply with a 5xx code counts against ``smtp.max_errors``;
reaching it sends ``421 4.7.0`` and closes.  An unexpected exception in a
handler is logged with the connection id and answered ``421 4.3.0``; no
exception text reaches the client.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.config import SMTPConfig
from mailsuite.interfaces import UserRecord
from mailsuite.protocol.lines import LineProtocol
from mailsuite.smtp import replies
from mailsuite.smtp.commands import COMMANDS
from mailsuite.smtp.headers import TraceInfo
from mailsuite.smtp.replies import Refused, Reply
from mailsuite.smtp.states import State
from mailsuite.smtp.transaction import Transaction

if TYPE_CHECKING:
    from mailsuite.smtp.server import SMTPFactory

SUBMISSION_ROLES = ("submission", "submissions")


class SMTPSession(LineProtocol):
    """One SMTP connection.  Attributes used by the command handlers:

    ``state``, ``helo``/``esmtp`` (after EHLO/HELO), ``user`` (after AUTH),
    ``tx`` (the current :class:`Transaction`), ``receiver`` (DATA/BDAT
    content in progress), ``exchange`` (an AUTH exchange in progress).
    """

    strict_crlf = True
    coalesce_output = True  # replies to pipelined commands go out as one unit (RFC 2920 §3.2)
    factory: SMTPFactory

    def __init__(self, config: SMTPConfig) -> None:
        super().__init__()
        self.config = config
        self.max_line_length = config.max_line_length
        self.timeout = config.command_timeout
        self.state = State.INIT
        self.helo = ""
        self.esmtp = False
        self.user: UserRecord | None = None
        self.tx: Transaction | None = None
        self.receiver: Any = None
        self.exchange: Any = None
        self.errors = 0
        self._messages = itertools.count(1)

    # -- roles -----------------------------------------------------------
    @property
    def role(self) -> str:
        return self.factory.role

    @property
    def is_submission(self) -> bool:
        return self.role in SUBMISSION_ROLES

    @property
    def context(self) -> Any:
        return self.factory.context

    @property
    def hostname(self) -> str:
        return self.factory.hostname

    def auth_allowed(self) -> bool:
        """AUTH is offered on submission roles, over TLS unless the admin
        set ``auth.allow_plaintext`` (RFC 4954 §4, RFC 8314)."""
        return self.is_submission and (self.tls_active or self.context.config.auth.allow_plaintext)

    def starttls_available(self) -> bool:
        return not self.tls_active and self.context.tls is not None

    # -- output ------------------------------------------------------------
    def reply(self, reply: Reply) -> None:
        """Send a reply; a 5xx counts as an error (see the module doc)."""
        if self.disconnecting:
            return
        for line in reply.lines():
            self.send_line(line)
        if reply.code >= 500:
            self.errors += 1
            if self.errors >= self.config.max_errors:
                self.log.info("{cid} too many errors", cid=self.conn_id)
                self.abandon(replies.TOO_MANY_ERRORS)

    def abandon(self, reply: Reply) -> None:
        """Send a 421 reply, drop the transaction and close."""
        if not self.disconnecting:
            for line in reply.with_text(f"{self.hostname} {reply.text}").lines():
                self.send_line(line)
        self.end_transaction()
        self.close()

    # -- lifecycle ------------------------------------------------------------
    def connection_started(self) -> None:
        self.send_line(f"220 {self.hostname} ESMTP mailsuite")

    def connection_ended(self, reason: Failure) -> None:
        self.disconnecting = True
        self.exchange = None
        self.end_transaction()

    def timed_out(self) -> None:
        self.abandon(replies.TIMEOUT)

    def internal_error(self) -> None:
        self.abandon(replies.INTERNAL)

    # -- state -------------------------------------------------------------
    def end_transaction(self) -> None:
        """Forget the transaction (aborting content not yet committed)."""
        if self.receiver is not None:
            self.receiver.abort()
            self.receiver = None
        self.tx = None
        if self.state in (State.MAIL, State.RCPT, State.CHUNKING):
            self.state = State.READY

    def reset_session(self) -> None:
        """Back to the state right after the greeting (RFC 3207 §4.2)."""
        self.end_transaction()
        self.state = State.INIT
        self.helo = ""
        self.esmtp = False
        self.user = None

    def next_message_id(self) -> str:
        return f"{self.conn_id}.{next(self._messages)}"

    def trace_info(self, message_id: str) -> TraceInfo:
        assert self.tx is not None
        return TraceInfo(
            hostname=self.hostname,
            helo=self.helo,
            peer=self.peer_host,
            esmtp=self.esmtp,
            tls=self.tls_info(),
            user=self.user.address if self.user and self.is_submission else None,
            smtputf8=self.tx.params.smtputf8,
            message_id=message_id,
            recipients=tuple(self.tx.recipients),
        )

    # -- input ---------------------------------------------------------------
    def line_received(self, line: bytes) -> defer.Deferred[Any] | None:
        if self.exchange is not None:
            return self.exchange.line(line)  # type: ignore[no-any-return]
        if b"\r" in line or b"\n" in line:
            self.reply(replies.BARE_CRLF_COMMAND)
            return None
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.reply(replies.BAD_SYNTAX)
            return None
        if "\0" in text:
            self.reply(replies.BAD_SYNTAX)
            return None
        verb, _, args = text.partition(" ")
        command = COMMANDS.get(verb.upper())
        if command is None:
            self.log.info("{cid} unknown command", cid=self.conn_id)
            self.reply(replies.UNRECOGNIZED)
            return None
        refusal = command.refusal(self.state)
        if refusal is not None:
            self.reply(refusal)
            return None
        try:
            result: defer.Deferred[Any] | None = command.handler(self, args)
        except Refused as e:
            self.reply(e.reply)
            return None
        return result

    def line_too_long(self) -> None:
        if self.exchange is not None:
            self.exchange = None
            self.reply(replies.AUTH_CANCELLED)
        else:
            self.reply(replies.LINE_TOO_LONG)

    def raw_data_received(self, data: bytes) -> defer.Deferred[Any] | None:
        result: defer.Deferred[Any] | None = self.receiver.data(data)
        return result
