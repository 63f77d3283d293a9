"""DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030): receiving message content.

The content never sits whole in memory: checked lines collect in a buffer
that is written to the delivery (and the queue copy) through the runner
whenever it reaches :data:`FLUSH_BYTES`; input is held while a write is in
flight.  Small messages are written and committed in one runner call.

* DATA ends only at ``<CRLF>.<CRLF>``.  A message with a bare CR, bare LF
  or NUL is read to its end and refused with 550 5.6.11; one over the size
  limit with 552 5.3.4.  A line over ``smtp.max_line_length`` (at least
  998 octets, RFC 5321 §4.5.3.1.6) fails the message *and closes the
  connection* at once: the server never goes back to command mode in the
  middle of content.
* BDAT reads exactly the announced octets in every case (a refused chunk
  is read and discarded, so commands stay in sync).  ``BDAT`` whose size
  cannot be parsed closes the connection for the same reason.  Content
  after a failed chunk is refused (``554 5.5.0``) until RSET or MAIL.
* 250 comes only after the storage commit returned (durable), see
  :mod:`mailsuite.smtp.transaction` for the partial-failure rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.errors import MailError
from mailsuite.smtp import headers, replies
from mailsuite.smtp.body import ChunkDecoder, ContentChecker, DotDecoder
from mailsuite.smtp.replies import Reply
from mailsuite.smtp.states import State
from mailsuite.smtp.transaction import MessageWriter, Outcome, Transaction

if TYPE_CHECKING:
    from mailsuite.smtp.session import SMTPSession

FLUSH_BYTES = 64 * 1024
#: RFC 5321 §4.5.3.1.6: text lines of 1000 octets with the CRLF must be
#: accepted, whatever ``smtp.max_line_length`` allows for commands.
MIN_TEXT_LINE = 998
_BDAT = re.compile(r"([0-9]{1,18})(?: +(LAST))? *", re.IGNORECASE)


class Receiver:
    """Content of one message for ``session``'s transaction."""

    def __init__(self, session: SMTPSession, tx: Transaction) -> None:
        self.session = session
        self.tx = tx
        config = session.config
        self.checker = ContentChecker(config.max_message_size)
        line_limit = max(config.max_line_length, MIN_TEXT_LINE)
        self.dots = DotDecoder(line_limit)
        self.chunks = ChunkDecoder(line_limit)
        self.message_id = session.next_message_id()
        trace = headers.received(session.trace_info(self.message_id))
        context = session.context
        self.writer = MessageWriter(
            context.runner,
            context.agent,
            context.queue,
            tx,
            (headers.return_path(tx.sender.mailbox) + trace, trace),
        )
        self.chunk_left = 0
        self.last = False

    # -- DATA ----------------------------------------------------------------
    def data(self, data: bytes) -> defer.Deferred[Any] | None:
        if self.tx.mode == "BDAT":
            return self._chunk_data(data)
        lines = self.dots.feed(data)
        if self.dots.too_long:
            self.session.log.info("{cid} line too long in DATA", cid=self.session.conn_id)
            self.session.reply(replies.DATA_LINE_TOO_LONG)
            self.session.end_transaction()
            self.session.close()
            return None
        self.checker.add_lines(lines)
        if self.dots.ended:
            self.session.set_line_mode(self.dots.leftover)
            self.session.reset_timeout(self.session.config.command_timeout)
            return self.end_of_message()
        return self._maybe_flush()

    def _maybe_flush(self) -> defer.Deferred[Any] | None:
        if self.checker.failed or len(self.checker.pending) < FLUSH_BYTES:
            return None
        return self.writer.write(self.checker.take())

    # -- BDAT ----------------------------------------------------------------
    def start_chunk(self, size: int, last: bool) -> None:
        self.chunk_left = size
        self.last = last

    def _chunk_data(self, data: bytes) -> defer.Deferred[Any] | None:
        self.chunk_left -= len(data)
        self.checker.add_lines(self.chunks.feed(data))
        if self.chunk_left > 0:
            return self._maybe_flush()
        self.session.reset_timeout(self.session.config.command_timeout)
        return self.chunk_done()

    def chunk_done(self) -> defer.Deferred[Any] | None:
        """The announced octets were read: answer this chunk."""
        if self.last:
            self.checker.add_lines(self.chunks.finish())
            return self.end_of_message()
        self.session.state = State.CHUNKING
        failure = self._content_failure()
        if failure is not None:
            self.session.reply(failure)
            self.tx.failed = True
            self.writer.abort()
            return None
        size = len(self.checker.pending)
        self.session.reply(replies.CHUNK_OK)
        return self.writer.write(self.checker.take()) if size >= FLUSH_BYTES else None

    # -- end of message -------------------------------------------------------
    def _content_failure(self) -> Reply | None:
        if self.chunks.too_long:
            return replies.MESSAGE_LINE_TOO_LONG
        if self.checker.bad_chars:
            return replies.BARE_CRLF_DATA
        if self.checker.too_big:
            return replies.TOO_BIG
        return None

    def end_of_message(self) -> defer.Deferred[Any] | None:
        failure = self._content_failure()
        if failure is not None:
            self.session.log.info(
                "{cid} message {mid} refused: {text}",
                cid=self.session.conn_id,
                mid=self.message_id,
                text=failure.text,
            )
            self.session.reply(failure)
            self.session.end_transaction()
            return None
        d = self.writer.finish(self.checker.take())
        d.addCallbacks(self._stored, self._failed)
        return d

    def _stored(self, outcome: Outcome) -> None:
        session = self.session
        delivered = {r.recipient for r in outcome.results if r.error is None}
        delivered.update(outcome.queued)
        errors = []
        for r in outcome.results:
            if r.error is not None:
                errors.append(r.error)
                session.log.info(
                    "{cid} message {mid} not delivered to {rcpt}: {error}",
                    cid=session.conn_id,
                    mid=self.message_id,
                    rcpt=r.recipient,
                    error=str(r.error),
                )
        session.receiver = None  # committed: nothing to abort
        if delivered:
            # The delivery log line of every message: built here in one
            # f-string (one format field costs a third of six).
            queued = f", queued as {outcome.queue_id}" if outcome.queue_id else ""
            session.log.info(
                "{line}",
                line=f"{session.conn_id} message {self.message_id} from "
                f"<{self.tx.sender.mailbox}> stored for {len(delivered)} of "
                f"{len(self.tx.recipients)} recipients{queued}",
            )
            session.reply(
                replies.data_result(len(delivered), len(self.tx.recipients), outcome.queue_id)
            )
        else:
            session.reply(replies.all_failed(errors))
        session.end_transaction()

    def _failed(self, failure: Failure) -> None:
        session = self.session
        error = failure.value
        if isinstance(error, MailError):
            session.log.info(
                "{cid} message {mid} failed: {error}",
                cid=session.conn_id,
                mid=self.message_id,
                error=str(error),
            )
        else:
            session.log.failure("{cid} storing message failed", failure, cid=session.conn_id)
        session.receiver = None
        session.reply(replies.from_error(error))
        session.end_transaction()

    def abort(self) -> None:
        self.writer.abort()


class Discard:
    """Reads and drops a refused BDAT chunk, then sends the refusal."""

    def __init__(self, session: SMTPSession, size: int, refusal: Reply) -> None:
        self.session = session
        self.left = size
        self.refusal = refusal
        self.previous = session.receiver  # a failed BDAT transaction's receiver

    def data(self, data: bytes) -> None:
        self.left -= len(data)
        if self.left <= 0:
            self.done()

    def done(self) -> None:
        self.session.receiver = self.previous
        self.session.reset_timeout(self.session.config.command_timeout)
        self.session.reply(self.refusal)

    def abort(self) -> None:
        if self.previous is not None:
            self.previous.abort()


def cmd_data(session: SMTPSession, args: str) -> None:
    if args.strip():
        session.reply(replies.NO_ARGUMENTS)
        return
    tx = session.tx
    assert tx is not None
    if tx.mode == "BDAT":
        session.reply(replies.MIXED_DATA_BDAT)
        return
    tx.mode = "DATA"
    session.receiver = Receiver(session, tx)
    session.reply(replies.START_DATA)
    session.set_raw_mode()
    session.reset_timeout(session.config.data_timeout)


def _bdat_refusal(session: SMTPSession) -> Reply | None:
    tx = session.tx
    if tx is None:
        return replies.NEED_MAIL if session.state is not State.INIT else replies.HELLO_FIRST
    if not tx.recipients:
        return replies.NO_VALID_RCPT
    if tx.mode == "DATA":
        return replies.MIXED_DATA_BDAT
    if tx.failed:
        return replies.BDAT_FAILED
    return None


def cmd_bdat(session: SMTPSession, args: str) -> defer.Deferred[Any] | None:
    m = _BDAT.fullmatch(args)
    if m is None:
        session.reply(replies.BDAT_SYNTAX)
        session.end_transaction()
        session.close()
        return None
    size, last = int(m.group(1)), m.group(2) is not None
    refusal = _bdat_refusal(session)
    if refusal is not None:
        discard = Discard(session, size, refusal)
        session.receiver = discard
        if size == 0:
            discard.done()
        else:
            session.set_raw_mode(size)
            session.reset_timeout(session.config.data_timeout)
        return None
    tx = session.tx
    assert tx is not None
    if tx.mode != "BDAT":
        tx.mode = "BDAT"
        session.receiver = Receiver(session, tx)
    receiver: Receiver = session.receiver
    receiver.start_chunk(size, last)
    if size == 0:
        return receiver.chunk_done()
    session.set_raw_mode(size)
    session.reset_timeout(session.config.data_timeout)
    return None
