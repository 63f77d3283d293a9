"""The POP3 server: session state machine and listener factory.

RFC 1939 (base protocol), RFC 2449 (CAPA, response codes, PIPELINING),
RFC 2595 (STLS), RFC 5034 (AUTH), RFC 3206 ([SYS/*], [AUTH]).

Framing, line limits, one-command-at-a-time dispatch, TCP_NODELAY and the
idle timer come from :class:`mailsuite.protocol.lines.LineProtocol`.
Commands are dispatched through the explicit table in
:mod:`mailsuite.pop3.commands`.  The session never sends exception text:
typed errors become ``-ERR`` lines in :mod:`mailsuite.pop3.replies`,
anything else is logged and answered with a generic ``-ERR [SYS/TEMP]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from mailsuite.config import POP3Config
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import BlockingRunner, UserRecord
from mailsuite.pop3 import maildrop, replies
from mailsuite.pop3.authorization import LoginDelay, sasl_continue
from mailsuite.pop3.commands import COMMANDS
from mailsuite.pop3.maildrop import Maildrop
from mailsuite.pop3.states import AUTHORIZATION, TRANSACTION, UPDATE
from mailsuite.pop3.stream import MessageSender
from mailsuite.protocol.lines import LineFactory, LineProtocol

T = TypeVar("T")


class POP3Server(LineProtocol):
    """One POP3 session.

    Attributes used by the command handlers: ``state``, ``config``,
    ``pending_user`` (after USER), ``sasl`` (a mechanism awaiting the
    client's next line), ``user`` and ``drop`` (in TRANSACTION),
    ``sender`` (a RETR/TOP being streamed), ``auth_failures``.
    """

    factory: POP3Factory
    max_bad_commands = 10

    def __init__(self, config: POP3Config) -> None:
        super().__init__()
        self.config = config
        self.max_line_length = config.max_line_length
        self.timeout = config.timeout
        self.state = AUTHORIZATION
        self.pending_user: str | None = None
        self.sasl: Any = None
        self.user: UserRecord | None = None
        self._drop: Maildrop | None = None
        self.sender: MessageSender | None = None
        self.auth_failures = 0
        self.bad_commands = 0

    # -- lifecycle -------------------------------------------------------------
    def connection_started(self) -> None:
        host = self.factory.context.config.server.hostname
        self.reply(f"+OK {host} POP3 server ready")

    def connection_ended(self, reason: Failure) -> None:
        """RFC 1939 §6: without QUIT there is no UPDATE; DELE marks are forgotten."""
        drop, self._drop = self._drop, None
        if drop is None:
            return
        if self.state == TRANSACTION and drop.deleted:
            self.log.info(
                "{cid} connection lost before QUIT: {n} DELE marks dropped",
                cid=self.conn_id,
                n=len(drop.deleted),
            )
        if self.state != UPDATE:  # an UPDATE in progress releases the view itself
            self.run(maildrop.release, drop.mailbox).addErrback(
                lambda f: self.log.failure("{cid} releasing the maildrop", f, cid=self.conn_id)
            )

    def timed_out(self) -> None:
        if self.sender is None:
            self.reply("-ERR Disconnected for inactivity")
            self.close()
        else:
            self.abort()  # the client stopped reading: nothing more can be written

    def close(self) -> None:
        if self.sender is not None:
            sender, self.sender = self.sender, None
            sender.abort()
        super().close()

    def abort(self) -> None:
        """Drop the connection now, without UPDATE and without flushing."""
        self.close()
        if self.transport is not None:
            self.transport.abortConnection()

    def internal_error(self) -> None:
        if self.sender is None and not self.disconnecting:
            self.reply(replies.INTERNAL_ERROR)
        self.close()

    # -- helpers for handlers ------------------------------------------------------
    def reply(self, line: str) -> None:
        self.send_line(line)

    def run(self, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        runner: BlockingRunner = self.factory.context.runner
        return runner.run(fn, *args)

    @property
    def drop(self) -> Maildrop:
        assert self._drop is not None, "TRANSACTION state without a maildrop"
        return self._drop

    def enter_transaction(self, user: UserRecord, drop: Maildrop) -> None:
        self.user = user
        self._drop = drop
        self.state = TRANSACTION
        self.log.info(
            "{cid} POP3 login {user}: {n} messages",
            cid=self.conn_id,
            user=user.address,
            n=len(drop.entries),
        )

    def plaintext_allowed(self) -> bool:
        """USER/PASS and AUTH PLAIN/LOGIN only over TLS unless the admin allows it."""
        return self.tls_active or bool(self.factory.context.config.auth.allow_plaintext)

    def can_stls(self) -> bool:
        return (
            self.state == AUTHORIZATION
            and not self.tls_active
            and self.factory.context.tls is not None
        )

    # -- input -----------------------------------------------------------------------
    def line_received(self, line: bytes) -> defer.Deferred[Any] | None:
        if self.sasl is not None:
            return sasl_continue(self, line)
        # Arguments may carry UTF-8 (passwords); bytes that are not UTF-8 are
        # kept as surrogates and reach the authenticator unchanged.
        text = line.decode("utf-8", "surrogateescape")
        keyword, _, arg = text.partition(" ")
        command = COMMANDS.get(keyword.upper()) if keyword.isascii() else None
        if command is None:
            self._bad("Unknown command")
            return None
        if self.state not in command.states:
            self._bad(f"{keyword.upper()} not allowed now")
            return None
        try:
            result: defer.Deferred[Any] | None = command.handler(self, arg)
        except MailError as e:
            if e.kind is not ErrorKind.BAD_INPUT:
                raise
            self.reply(replies.err(e.public_text))  # argument errors: not counted as garbage
            return None
        return result

    def line_too_long(self) -> None:
        if self.sasl is not None:
            self.sasl = None
            self.reply("-ERR Authentication data too long")
            return
        self._bad("Line too long")

    def _bad(self, text: str) -> None:
        self.bad_commands += 1
        self.reply(replies.err(text))
        if self.bad_commands >= self.max_bad_commands:
            self.reply("-ERR Too many bad commands, closing connection")
            self.close()


class POP3Factory(LineFactory):
    """Listener factory for the ``pop3`` and ``pop3s`` roles.

    ``chunk_size`` is how much of a message is read per thread hop when
    streaming RETR/TOP.  ``login_delay`` is shared by the POP3 listeners of
    one context (kept in ``context.extras``).
    """

    protocol = POP3Server
    refusal = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    chunk_size = 64 * 1024

    def __init__(self, context: Any, role: str, implicit_tls: bool = False) -> None:
        super().__init__(context, role, implicit_tls)
        self.config: POP3Config = context.config.pop3
        self.login_delay: LoginDelay | None = None
        if self.config.login_delay > 0:
            self.login_delay = context.extras.setdefault(
                "pop3.login_delay", LoginDelay(self.config.login_delay, context.reactor)
            )

    def build(self, addr: Any) -> LineProtocol:
        return POP3Server(self.config)


def make_factory(context: Any, role: str, implicit_tls: bool) -> protocol.Factory:
    """The ``ROLES`` entry point (mailsuite.service)."""
    return POP3Factory(context, role, implicit_tls)
