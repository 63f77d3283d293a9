"""TRANSACTION-state commands and QUIT (RFC 1939 §5-§7).

STAT, LIST, UIDL answer from the snapshot taken at login; RETR and TOP
stream the stored file (``stream.MessageSender``); DELE and RSET only
change marks; QUIT in TRANSACTION enters UPDATE and applies the marks
(``maildrop.update``).  Arguments are validated strictly: a message number
is 1..n and not marked deleted, TOP's line count is a number >= 0;
anything else is ``-ERR``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mailsuite.errors import ErrorKind, MailError
from mailsuite.pop3 import maildrop, replies
from mailsuite.pop3.states import TRANSACTION, UPDATE
from mailsuite.pop3.stream import Encoder, MessageSender

if TYPE_CHECKING:
    from mailsuite.pop3.server import POP3Server

log = Logger()


def _args(arg: str, least: int, most: int) -> list[str]:
    args = arg.split()
    if not least <= len(args) <= most:
        raise MailError(ErrorKind.BAD_INPUT, "Wrong number of arguments")
    return args


def cmd_stat(session: POP3Server, arg: str) -> None:
    _args(arg, 0, 0)
    count, size = session.drop.stat()
    session.reply(f"+OK {count} {size}")


def cmd_list(session: POP3Server, arg: str) -> None:
    args = _args(arg, 0, 1)
    drop = session.drop
    if args:
        number, entry = drop.get(args[0])
        session.reply(f"+OK {number} {entry.size}")
        return
    count, size = drop.stat()
    lines = [f"{n} {e.size}" for n, e in drop.numbered() if n not in drop.deleted]
    session.send(replies.multiline(f"+OK {count} messages ({size} octets)", lines))


def cmd_uidl(session: POP3Server, arg: str) -> None:
    args = _args(arg, 0, 1)
    drop = session.drop
    if args:
        number, entry = drop.get(args[0])
        session.reply(f"+OK {number} {entry.uidl}")
        return
    lines = [f"{n} {e.uidl}" for n, e in drop.numbered() if n not in drop.deleted]
    session.send(replies.multiline("+OK Unique-ID listing follows", lines))


def cmd_retr(session: POP3Server, arg: str) -> defer.Deferred[Any]:
    (which,) = _args(arg, 1, 1)
    number, entry = session.drop.get(which)
    return _send_message(session, number, entry, None)


def cmd_top(session: POP3Server, arg: str) -> defer.Deferred[Any]:
    which, count = _args(arg, 2, 2)
    number, entry = session.drop.get(which)
    lines = maildrop.parse_number(count, "line count")
    return _send_message(session, number, entry, lines)


def _send_message(
    session: POP3Server, number: int, entry: maildrop.Entry, top_lines: int | None
) -> defer.Deferred[Any]:
    """Open the file (EXPUNGED -> -ERR, never another message), answer +OK, stream."""
    chunk = session.factory.chunk_size
    d = session.run(maildrop.open_message, session.drop.mailbox, entry.uid, chunk)

    def opened(result: tuple[Any, bytes]) -> defer.Deferred[Any] | None:
        source, first = result
        if session.disconnecting:
            source.close()
            return None
        status = b"+OK %d octets\r\n" % entry.size
        if source.closed:  # the whole message came with the first read: one write
            encoder = Encoder(top_lines)
            session.send(status + encoder.feed(first)[0] + encoder.finish())
            sent(True)
            return None
        session.send(status)
        sender = MessageSender(
            session.transport,
            session.factory.context.runner,
            source,
            Encoder(top_lines),
            chunk,
            first,
            session.reset_timeout,
        )
        session.sender = sender
        return sender.start().addCallbacks(sent, broken)

    def sent(complete: bool) -> None:
        session.sender = None
        if complete and top_lines is None:
            session.drop.retrieved.add(number)

    def broken(failure: Failure) -> None:
        session.sender = None
        log.failure(
            "{cid} reading message {uid} failed", failure, cid=session.conn_id, uid=entry.uid
        )
        session.abort()  # the answer is incomplete: the client must not take it

    def not_opened(failure: Failure) -> Failure | None:
        e = failure.value
        if not isinstance(e, MailError):
            return failure  # a bug: the session logs it and answers generically
        if e.kind is ErrorKind.EXPUNGED:
            session.reply(f"-ERR Message {number} was removed by another session")
            return None
        log.warn(
            "{cid} message {uid} not opened: {err!r}", cid=session.conn_id, uid=entry.uid, err=e
        )
        session.reply(replies.error_line(e))
        return None

    return d.addCallbacks(opened, not_opened)


def cmd_dele(session: POP3Server, arg: str) -> None:
    (which,) = _args(arg, 1, 1)
    number, _entry = session.drop.get(which)
    session.drop.deleted.add(number)
    session.reply(f"+OK Message {number} deleted")


def cmd_rset(session: POP3Server, arg: str) -> None:
    _args(arg, 0, 0)
    drop = session.drop
    drop.deleted.clear()
    if session.config.expire_days == 0:
        drop.retrieved.clear()
    count, size = drop.stat()
    session.reply(f"+OK Maildrop has {count} messages ({size} octets)")


def cmd_noop(session: POP3Server, arg: str) -> None:
    _args(arg, 0, 0)
    session.reply("+OK")


def _update_and_release(mailbox: Any, remove: list[int], seen: list[int]) -> list[int]:
    """Blocking: UPDATE (if anything to do), then free the view."""
    try:
        return maildrop.update(mailbox, remove, seen) if remove or seen else []
    finally:
        maildrop.release(mailbox)


def cmd_quit(session: POP3Server, arg: str) -> defer.Deferred[Any] | None:
    """QUIT: in AUTHORIZATION just close; in TRANSACTION enter UPDATE (RFC 1939 §6)."""
    if session.state != TRANSACTION:
        session.reply("+OK Bye")
        session.close()
        return None
    session.state = UPDATE
    drop = session.drop
    expire_retrieved = session.config.expire_days == 0
    remove = drop.to_remove(expire_retrieved)
    seen = drop.to_mark_seen(expire_retrieved)
    d = session.run(_update_and_release, drop.mailbox, remove, seen)

    def done(removed: list[int]) -> None:
        log.info("{cid} UPDATE removed {n} messages", cid=session.conn_id, n=len(removed))
        session.reply(f"+OK Bye ({len(drop.entries) - len(remove)} messages left)")
        session.close()

    def failed(failure: Failure) -> None:
        log.failure("{cid} UPDATE failed", failure, cid=session.conn_id)
        session.reply(replies.UPDATE_FAILED)
        session.close()

    return d.addCallbacks(done, failed)
