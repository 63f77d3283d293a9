"""The IMAP4rev1 server session (RFC 3501) and its listener factory.

Command assembly (lines, literals, limits, spooling) is
:class:`mailsuite.imap.reader.CommandReader`; this module tokenizes each
complete command and dispatches it through :data:`COMMANDS`, the explicit
table of commands and the states in which each is allowed.

Output after every command (RFC 3501 §7): the selected mailbox is synced
through the runner, pending EXISTS/RECENT/FETCH-FLAGS updates are sent, and
EXPUNGE too unless the command was FETCH, STORE or SEARCH; then the tagged
line.

Limits: lines of ``imap.max_line_length`` after login, 8 KiB before;
literals of ``imap.max_literal_size`` / ``imap.max_unauth_literal_size``;
timeouts ``imap.timeout_unauthenticated`` / ``timeout_authenticated``
(IDLE keeps the session).  Connection ids appear on every log line;
passwords and AUTHENTICATE data are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore, responses
from mailsuite.imap.command import (
    CONTINUE,
    Command,
    Request,
    Result,
    State,
    bad,
)
from mailsuite.imap.commands import any as any_cmds
from mailsuite.imap.commands import auth as auth_cmds
from mailsuite.imap.commands import mailbox as mailbox_cmds
from mailsuite.imap.commands import quota as quota_cmds
from mailsuite.imap.commands import selected as selected_cmds
from mailsuite.imap.parser import ParseError, tokenize
from mailsuite.imap.reader import TAG_RE, CommandReader, guess_tag
from mailsuite.imap.selected import SelectedView
from mailsuite.interfaces import MailboxChange
from mailsuite.protocol.lines import LineFactory
from mailsuite.users import sasl

#: The command table: name -> Command (handler and allowed states).
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        *any_cmds.COMMANDS,
        *auth_cmds.COMMANDS,
        *mailbox_cmds.COMMANDS,
        *selected_cmds.COMMANDS,
        *quota_cmds.COMMANDS,
    )
}

_UNAUTH_LINE_LIMIT = 8192

BASE_CAPS = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
AUTH_CAPS = (
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "SPECIAL-USE",
    "CHILDREN",
    "BINARY",
    "CONDSTORE",
    "QRESYNC",
    "WITHIN",
    "ESEARCH",
    "STATUS=SIZE",
    *quota_cmds.CAPABILITIES,
    "LIST-EXTENDED",
    "LIST-STATUS",
    "MULTIAPPEND",
)


class IMAPSession(CommandReader):
    """One IMAP connection.  ``factory`` is an :class:`IMAPFactory`."""

    factory: IMAPFactory

    def __init__(self) -> None:
        super().__init__()
        self.state = State.NOT_AUTHENTICATED
        self.user: Any = None
        self.account: Any = None
        self.view: SelectedView | None = None
        self.enabled: set[str] = set()
        #: set by a command that must not be answered with EXPUNGE/VANISHED
        #: (UID SEARCH with message numbers, RFC 7162 §3.2.10.2)
        self.hold_expunge = False
        self.idle: Any = None  # commands.idle.Idle while IDLE runs
        self._unsubscribe: Callable[[], None] | None = None

    # -- helpers for command modules --------------------------------------------
    @property
    def context(self) -> Any:
        return self.factory.context

    @property
    def config(self) -> Any:
        return self.factory.context.config.imap

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        """Blocking work through the context's runner (DESIGN.md §2)."""
        d: defer.Deferred[Any] = self.context.runner.run(fn, *args, **kw)
        return d

    def untagged(self, text: str | bytes) -> None:
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(b"* " + text + b"\r\n")

    def plaintext_ok(self) -> bool:
        """True if passwords may be sent on this connection."""
        return self.tls_active or bool(self.context.config.auth.allow_plaintext)

    def can_starttls(self) -> bool:
        return (
            not self.tls_active and not self.factory.implicit_tls and self.context.tls is not None
        )

    def capabilities(self) -> list[str]:
        caps = list(BASE_CAPS)
        if self.state is State.NOT_AUTHENTICATED:
            if self.can_starttls():
                caps.append("STARTTLS")
            if self.plaintext_ok():
                caps.extend(f"AUTH={m}" for m in sasl.MECHANISMS)
            else:
                caps.append("LOGINDISABLED")
        else:
            caps.extend(AUTH_CAPS)
            caps.append(f"APPENDLIMIT={int(self.config.max_literal_size)}")  # RFC 7889
        return caps

    # -- connection lifecycle ---------------------------------------------------
    def connection_started(self) -> None:
        self.max_line_length = min(self.config.max_line_length, _UNAUTH_LINE_LIMIT)
        self.reset_timeout(self.config.timeout_unauthenticated)
        host = self.context.config.server.hostname
        caps = " ".join(self.capabilities())
        self.untagged(f"OK [CAPABILITY {caps}] {host} IMAP4rev1 ready")

    def connection_ended(self, reason: Failure) -> None:
        self.state = State.LOGOUT
        self.reset_command()
        if self.idle is not None:
            self.idle.stop()
            self.idle = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.view = None

    def timed_out(self) -> None:
        if self.idle is not None:
            self.reset_timeout()  # IDLE keeps the connection (RFC 2177 keepalives)
            return
        self.untagged("BYE Autologout; idle for too long")
        self.close()

    def internal_error(self) -> None:
        if not self.disconnecting:
            self.untagged("BYE [SERVERBUG] Internal error, closing connection")
        self.close()

    def logged_in(self, user: Any, account: Any) -> None:
        """Switch to authenticated state (called by LOGIN/AUTHENTICATE)."""
        self.user = user
        self.account = account
        self.state = State.AUTHENTICATED
        self.max_line_length = self.config.max_line_length
        self.reset_timeout(self.config.timeout_authenticated)
        self._unsubscribe = self.context.hub.subscribe(user.address, self._on_change)
        self.log.info("{cid} login {user}", cid=self.conn_id, user=user.address)

    def _on_change(self, change: MailboxChange) -> None:
        view = self.view
        if view is None or change.kind == "folders":
            return
        if _same_folder(change.folder, view.name):
            # Flag changes are recorded in the modseq log, whose stat
            # (``changed_on_disk``) shows another view's change anyway; a
            # forced sync would also follow this session's own STORE.
            if change.kind != "flags":
                view.dirty = True
            if self.idle is not None:
                self.idle.poke()

    # -- CommandReader hooks ----------------------------------------------------
    def literal_limit(self) -> int:
        if self.state is State.NOT_AUTHENTICATED:
            return int(self.config.max_unauth_literal_size)
        return int(self.config.max_literal_size)

    def append_room(self) -> defer.Deferred[int | None] | None:
        if self.account is None:
            return None
        return self.run(_quota_left, self.context.directory, self.account, self.user.address)

    def spool_directory(self) -> Path:
        return Path(self.context.config.server.data_dir) / "spool" / "imap"

    # -- dispatch ---------------------------------------------------------------
    def execute(self, fragments: list[bytes]) -> Any:
        """Tokenize and run one complete command."""
        try:
            tokens = tokenize(fragments)
        except ParseError as e:
            tag = guess_tag(fragments[0])
            self.send_line(f"{tag or '*'} BAD {e}")
            return None
        if not tokens or not isinstance(tokens[0], str) or not TAG_RE.match(tokens[0]):
            self.send_line("* BAD Invalid tag")
            return None
        tag = tokens[0]
        if len(tokens) < 2 or not isinstance(tokens[1], str):
            self.send_line(f"{tag} BAD Missing command")
            return None
        name = tokens[1].upper()
        command = COMMANDS.get(name)
        if command is None:
            self.send_line(f"{tag} BAD Unknown command")
            return None
        if self.state not in command.states:
            text = (
                "No mailbox selected" if self.state is State.AUTHENTICATED else "Not allowed now"
            )
            self.send_line(f"{tag} BAD {text}")
            return None
        return self.dispatch(command, Request(tag, name, list(tokens[2:])))

    def dispatch(self, command: Command, req: Request) -> Any:
        """Run ``command``'s handler and complete the command with its outcome."""
        try:
            outcome = command.handler(self, req)
        except Exception as e:
            outcome = self.failure_result(e)
        if outcome is CONTINUE:
            return None
        if isinstance(outcome, defer.Deferred):
            outcome.addErrback(self._failed)
            outcome.addCallback(self.complete, req, command.expunge_ok)
            return outcome
        return self.complete(outcome, req, command.expunge_ok)

    def _failed(self, f: Failure) -> Result:
        return self.failure_result(f.value if isinstance(f.value, BaseException) else Exception())

    def failure_result(self, err: BaseException) -> Result:
        """Map an exception from a handler to its tagged result (logging internals)."""
        if isinstance(err, ParseError):
            return bad(str(err))
        if isinstance(err, MailError):
            if err.kind in (ErrorKind.INTERNAL, ErrorKind.TEMPORARY):
                self.log.warn("{cid} {err!r}", cid=self.conn_id, err=err)
            status, _, rest = responses.error_reply(err).partition(" ")
            code, _, text = rest[1:].partition("] ")
            return Result(status, text, code)
        self.log.failure("{cid} internal error", Failure(err), cid=self.conn_id)
        return Result("NO", "Internal error, try again later", "SERVERBUG")

    def complete(self, result: Result, req: Request, expunge_ok: bool = True) -> Any:
        """Send pending updates (RFC 3501 §7) then the tagged line."""
        hold, self.hold_expunge = self.hold_expunge, False
        if self.disconnecting and self.state is not State.LOGOUT:
            return None
        if self.view is None or self.state is not State.SELECTED:
            self.send_line(result.render(req.tag))
            if self.state is State.LOGOUT:
                self.close()
            return None
        d = self.refresh()

        def send(_: Any) -> None:
            held = bool(self.view is not None and self.view.pending_expunge)
            self.flush_updates((expunge_ok or req.uid) and not hold)
            released = held and self.view is not None and not self.view.pending_expunge
            self.send_line(condstore.finish(self, result, released).render(req.tag))

        d.addCallback(send)
        return d

    # -- selected mailbox updates -----------------------------------------------
    def refresh(self, force: bool = False) -> defer.Deferred[None]:
        """Sync the selected mailbox with the disk if the hub or a stat says so.

        The "did anything change?" test (``Mailbox.changed_on_disk``: a
        ``stat`` of ``new/``, ``cur/``, the uidlist and the modseq log, no
        directory listing) runs here on the reactor thread: it costs a few
        microseconds where a pool round trip costs ~0.1-0.3 ms of CPU, and it
        runs on every command and IDLE poll.  A deliberate exception to
        "no disk I/O on the reactor" (DESIGN.md §2 asks for exactly this stat
        per command); everything that lists or reads runs in the pool.
        """
        view = self.view
        if view is None:
            return defer.succeed(None)
        dirty = view.dirty or force
        if not dirty and not _changed(view):
            return defer.succeed(None)
        view.dirty = False
        d = self.run(_sync_into, view, True)

        def failed(f: Failure) -> None:
            if isinstance(f.value, MailError) and f.value.kind is ErrorKind.NONEXISTENT:
                self.log.info("{cid} selected mailbox vanished", cid=self.conn_id)
                return
            self.log.failure("{cid} mailbox sync failed", f, cid=self.conn_id)

        d.addErrback(failed)
        return d

    def flush_updates(self, allow_expunge: bool) -> None:
        if self.view is not None:
            lines = self.view.updates(allow_expunge)
            if lines:
                self.send(b"".join(b + b"\r\n" for b in lines))


def _changed(view: SelectedView) -> bool:
    """Reactor thread: True unless a stat shows the mailbox unchanged since
    the view's last sync (an error answers True: the pool sync reports it)."""
    try:
        return bool(view.mailbox.changed_on_disk())
    except Exception:
        return True


def _sync_into(view: SelectedView, force: bool) -> None:
    """Pool thread: sync the view's mailbox if anything may have changed and
    merge what the sync found (the storage reports every change but this
    view's own, which the session already applied).  Safe off the reactor:
    while a refresh runs no command or IDLE step reads the view."""
    mailbox = view.mailbox
    if force or mailbox.changed_on_disk():
        result = mailbox.sync()
        if result.added or result.expunged or result.flags_changed:
            view.apply(mailbox.messages(), result.flags_changed)
    condstore.after_sync(view, mailbox)


def _quota_left(directory: Any, account: Any, address: str) -> int | None:
    """Pool thread: bytes the user may still store (None = unlimited; 0 when
    the message-count quota is reached)."""
    user = directory.get_user(address)
    if user is None or not (user.quota_bytes or user.quota_messages):
        return None
    used, count = account.usage()
    if user.quota_messages and count >= user.quota_messages:
        return 0
    if not user.quota_bytes:
        return None
    return max(0, int(user.quota_bytes) - int(used))


def _same_folder(a: str, b: str) -> bool:
    if a.upper() == "INBOX" and b.upper() == "INBOX":
        return True
    return a == b


class IMAPFactory(LineFactory):
    protocol = IMAPSession
    refusal = b"* BYE [UNAVAILABLE] Too many connections\r\n"


def make_factory(context: Any, role: str, implicit_tls: bool) -> IMAPFactory:
    """The listener factory for the ``imap`` and ``imaps`` roles."""
    return IMAPFactory(context, role, implicit_tls)
