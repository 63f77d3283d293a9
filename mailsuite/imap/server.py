"""The IMAP4rev1 server session (RFC 3501) on :class:`LineProtocol`.

Input handling:

* A command is a line, plus -- when a line ends in ``{n}``, ``{n+}`` or
  ``~{n}`` -- a literal of ``n`` bytes and another line, and so on
  (RFC 3501 §4.3, RFC 7888 LITERAL+, RFC 3516 literal8).  Before a
  synchronising literal the size is checked (``imap.max_literal_size``;
  ``imap.max_unauth_literal_size`` before login; for APPEND also the quota)
  and only then is ``+`` sent.  A refused non-synchronising literal is read
  and discarded, then the command is answered: never executed, never
  buffered without bound.
* The whole command is tokenized (:mod:`mailsuite.imap.parser`) and
  dispatched through :data:`COMMANDS`, the explicit table of commands and
  the states in which each is allowed.
* Lines over ``imap.max_line_length`` are answered ``* BAD`` and skipped;
  the connection stays usable.

Output after every command (RFC 3501 §7): the selected mailbox is synced
through the runner, pending EXISTS/RECENT/FETCH-FLAGS updates are sent, and
EXPUNGE too unless the command was FETCH, STORE or SEARCH; then the tagged
line.

Connection ids appear on every log line; passwords and AUTHENTICATE data
are never logged.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import responses
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
from mailsuite.imap.commands import selected as selected_cmds
from mailsuite.imap.parser import FileLiteral, ParseError, literal_at_end, tokenize
from mailsuite.imap.selected import SelectedView
from mailsuite.interfaces import MailboxChange
from mailsuite.protocol.lines import LineFactory, LineProtocol
from mailsuite.users import sasl

#: The command table: name -> Command (handler and allowed states).
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        *any_cmds.COMMANDS,
        *auth_cmds.COMMANDS,
        *mailbox_cmds.COMMANDS,
        *selected_cmds.COMMANDS,
    )
}

_UNAUTH_LINE_LIMIT = 8192
_TAG_RE = re.compile(r'^[^\x00-\x20\x7f-\uffff(){%*"\\+]{1,64}$')
_HEAD_RE = re.compile(rb"^(\S+) +(?:(?i:UID) +)?(\S+)")
#: APPEND literals larger than this go to a spool file, not memory
SPOOL_THRESHOLD = 256 * 1024

BASE_CAPS = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
AUTH_CAPS = (
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "SPECIAL-USE",
    "CHILDREN",
    "BINARY",
)


class IMAPSession(LineProtocol):
    """One IMAP connection.  ``factory`` is an :class:`IMAPFactory`."""

    factory: IMAPFactory

    def __init__(self) -> None:
        super().__init__()
        self.state = State.NOT_AUTHENTICATED
        self.user: Any = None
        self.account: Any = None
        self.view: SelectedView | None = None
        self.enabled: set[str] = set()
        # a command reading client lines itself (AUTHENTICATE, IDLE); it gets
        # None for a line over the length limit
        self.line_hook: Callable[[bytes | None], Any] | None = None
        self.idle: Any = None  # commands.selected.Idle while IDLE runs
        self._fragments: list[bytes] = []
        self._cmd_size = 0
        self._literal: bytearray | None = None
        self._literal_left = 0
        self._literal_size = 0
        self._literal_binary = False
        self._spool: Any = None  # temporary file receiving a large APPEND literal
        self._cmd_tag = ""
        self._refused: Result | None = None  # a command being read only to be refused
        self._refused_tag = ""
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
        self._reset_command()
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
            view.dirty = True
            if self.idle is not None:
                self.idle.poke()

    # -- input ------------------------------------------------------------------
    def line_received(self, line: bytes) -> Any:
        if self.line_hook is not None and not self._fragments:
            return self.line_hook(line)
        self._fragments.append(line)
        self._cmd_size += len(line)
        announcement = literal_at_end(line)
        if announcement is None:
            return self._command_complete()
        return self._literal_announced(
            announcement.size, announcement.non_sync, announcement.binary
        )

    def line_too_long(self) -> Any:
        if self.line_hook is not None and not self._fragments:
            return self.line_hook(None)
        first = self._fragments[0] if self._fragments else self.long_line_head
        tag = self._refused_tag or _guess_tag(first)
        self._reset_command()
        self.log.info("{cid} command line too long", cid=self.conn_id)
        self.send_line(f"{tag or '*'} BAD [TOOBIG] Command line too long")
        return None

    def _literal_limit(self) -> int:
        if self.state is State.NOT_AUTHENTICATED:
            return int(self.config.max_unauth_literal_size)
        return int(self.config.max_literal_size)

    def _literal_announced(self, size: int, non_sync: bool, binary: bool) -> Any:
        head = _HEAD_RE.match(self._fragments[0])
        tag = self._cmd_tag = _guess_tag(self._fragments[0])
        command = head.group(2).upper() if head else b""
        limit = self._literal_limit()
        refusal: Result | None = None
        if self._cmd_size + size > limit + self.max_line_length * 4 or size > limit:
            refusal = Result("NO" if tag else "BAD", "Literal too big", "TOOBIG")
        spool = command == b"APPEND" and size > SPOOL_THRESHOLD
        if refusal is None and self._refused is None and command == b"APPEND" and self.account:
            d = self.run(_quota_left, self.context.directory, self.account, self.user.address)
            d.addCallback(self._after_quota, size, non_sync, binary, spool)
            return d
        return self._accept_literal(size, non_sync, binary, spool, refusal)

    def _after_quota(
        self, left: int | None, size: int, non_sync: bool, binary: bool, spool: bool
    ) -> Any:
        refusal = None
        if left is not None and size > left:
            refusal = Result("NO", "Quota exceeded", "OVERQUOTA")
        return self._accept_literal(size, non_sync, binary, spool, refusal)

    def _accept_literal(
        self, size: int, non_sync: bool, binary: bool, spool: bool, refusal: Result | None
    ) -> Any:
        """Refuse, or read the literal (into memory, or a spool file for big APPENDs)."""
        if refusal is not None and self._refused is None:
            if not non_sync:
                tag = self._cmd_tag
                self._reset_command()
                self.send_line(refusal.render(tag or "*"))
                return None
            self._refused, self._refused_tag = refusal, self._cmd_tag
        self._literal_binary = binary
        if spool and self._refused is None:
            d = self.run(_open_spool, Path(self.context.config.server.data_dir) / "spool" / "imap")
            d.addCallback(self._start_literal, size, non_sync)
            return d
        self._start_literal(None, size, non_sync)
        return None

    def _start_literal(self, spool: Any, size: int, non_sync: bool) -> None:
        if self.disconnecting:
            if spool is not None:
                spool.close()
            return
        if not non_sync:
            self.send_line("+ Ready for literal data")
        self._cmd_size += size
        self._spool = spool
        self._literal = bytearray() if self._refused is None and spool is None else None
        self._literal_left = self._literal_size = size
        if size == 0:
            self._literal_done()
        else:
            self.set_raw_mode(size)

    def raw_data_received(self, data: bytes) -> Any:
        self._literal_left -= len(data)
        if self._spool is not None and self._refused is None:
            if not self._literal_binary and b"\0" in data:
                self._refused, self._refused_tag = Result("BAD", "NUL in literal"), self._cmd_tag
            else:
                d = self.run(self._spool.write, data)
                if self._literal_left <= 0:
                    d.addCallback(lambda _: self._literal_done())
                return d
        elif self._literal is not None:
            self._literal += data
        if self._literal_left <= 0:
            self._literal_done()
        return None

    def _literal_done(self) -> None:
        if self._spool is not None and self._refused is None:
            self._spool.seek(0)
            self._fragments.append(FileLiteral(self._spool, self._literal_size))
            self._spool = None
            return
        self._fragments.append(bytes(self._literal) if self._literal is not None else b"")
        self._literal = None

    def _reset_command(self) -> None:
        _close_spools(self._fragments, self._spool)
        self._spool = None
        self._fragments = []
        self._cmd_size = 0
        self._literal = None
        self._refused = None
        self._refused_tag = ""

    def _command_complete(self) -> Any:
        fragments = self._fragments
        refused, refused_tag = self._refused, self._refused_tag
        self._fragments = []  # the spool files are closed after the command
        self._reset_command()
        if refused is not None:
            _close_spools(fragments, None)
            self.send_line(refused.render(refused_tag or "*"))
            return None
        try:
            result = self.execute(fragments)
        except BaseException:
            _close_spools(fragments, None)
            raise
        if isinstance(result, defer.Deferred):
            return result.addBoth(_pass_after, _close_spools, fragments, None)
        _close_spools(fragments, None)
        return result

    # -- dispatch ---------------------------------------------------------------
    def execute(self, fragments: list[bytes]) -> Any:
        """Tokenize and run one complete command."""
        try:
            tokens = tokenize(fragments)
        except ParseError as e:
            tag = _guess_tag(fragments[0])
            self.send_line(f"{tag or '*'} BAD {e}")
            return None
        if not tokens or not isinstance(tokens[0], str) or not _TAG_RE.match(tokens[0]):
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
        self.log.debug("{cid} {tag} {name}", cid=self.conn_id, tag=tag, name=name)
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
        if self.disconnecting and self.state is not State.LOGOUT:
            return None
        if self.view is None or self.state is not State.SELECTED:
            self.send_line(result.render(req.tag))
            if self.state is State.LOGOUT:
                self.close()
            return None
        d = self.refresh()

        def send(_: Any) -> None:
            self.flush_updates(expunge_ok or req.uid)
            self.send_line(result.render(req.tag))

        d.addCallback(send)
        return d

    # -- selected mailbox updates -----------------------------------------------
    def refresh(self, force: bool = False) -> defer.Deferred[None]:
        """Sync the selected mailbox with the disk if the hub or a stat says so."""
        view = self.view
        if view is None:
            return defer.succeed(None)
        dirty = view.dirty or force
        view.dirty = False
        d = self.run(_sync_into, view, dirty)

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


def _sync_into(view: SelectedView, force: bool) -> None:
    """Pool thread: sync the view's mailbox if anything may have changed and
    merge what the sync found (the storage reports every change but this
    view's own, which the session already applied).  Safe off the reactor:
    while a refresh runs no command or IDLE step reads the view."""
    mailbox = view.mailbox
    if not force and not mailbox.changed_on_disk():
        return
    result = mailbox.sync()
    if result.added or result.expunged or result.flags_changed:
        view.apply(list(mailbox.messages()))


def _open_spool(directory: Path) -> IO[bytes]:
    """Pool thread: an anonymous temporary file under ``<data>/spool/imap``."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)


def _close_spools(fragments: list[bytes], spool: Any) -> None:
    """Close spool files (anonymous temporary files: closing frees the disk space)."""
    for fragment in fragments:
        if isinstance(fragment, FileLiteral):
            fragment.file.close()
    if spool is not None:
        spool.close()


def _pass_after(result: Any, fn: Callable[..., Any], *args: Any) -> Any:
    fn(*args)
    return result


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


def _guess_tag(line: bytes) -> str:
    head = line.split(b" ", 1)[0]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return text if _TAG_RE.match(text) else ""


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
