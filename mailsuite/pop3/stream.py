"""Streaming RETR and TOP answers: dot-stuffing, TOP cutting, flow control.

RFC 1939 §3: a multi-line response is a sequence of CRLF-terminated lines;
a line starting with "." gets one more "." prepended ("byte-stuffing"); the
response ends with ".CRLF".  The stored message is read in chunks through
the blocking runner, so stuffing must work across chunk boundaries: a "."
that begins a line exactly at the start of a chunk, and a CRLF split
between two chunks (the CR ends one, the LF starts the next), are the two
shapes Twisted's own POP3 server gets wrong (DESIGN.md §2).

Line ends are sent exactly as stored: the store hands out CRLF (a file
with bare LFs is converted by ``Mailbox.open_message``), so nothing is
added inside a message and a CR is never doubled.

:class:`MessageSender` is an ``IPushProducer``: it reads the next chunk
only while the transport is not paused, so a 20 MiB message never sits in
memory whole (at most one chunk plus the transport's buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from mailsuite.interfaces import BlockingRunner

log = Logger()

#: TOP's line count is capped here; more lines than this means "all of them".
MAX_TOP_LINES = 10**9


class DotStuffer:
    """Turns message bytes, fed in arbitrary chunks, into a POP3 multi-line body.

    ``feed`` returns the bytes to send for a chunk; ``finish`` returns the
    end (a CRLF if the message did not end with a line end, then ".CRLF").
    Line ends are passed on as they are: the store returns CRLF
    (``Mailbox.open_message``), so nothing is added inside the message and a
    CR is never doubled; a "." after any LF is stuffed.  The hot path is one
    C-level search per chunk (and a replace only when a dot line occurs).
    """

    def __init__(self) -> None:
        self._at_line_start = True
        self._last = b""

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if b"\n." in data:
            data = data.replace(b"\n.", b"\n..")
        if self._at_line_start and data[:1] == b".":
            data = b"." + data
        self._last = data[-1:]
        self._at_line_start = self._last == b"\n"
        return data

    def finish(self) -> bytes:
        if self._at_line_start:
            return b".\r\n"
        if self._last == b"\r":
            return b"\n.\r\n"  # the message ended in a CR: complete that line end
        return b"\r\n.\r\n"


class TopCutter:
    """Passes the header, the empty line and the first ``lines`` body lines (RFC 1939 §7 TOP).

    ``feed`` returns (bytes to pass on, finished).  A message without an
    empty line is all header and is passed whole.
    """

    def __init__(self, lines: int) -> None:
        self._remaining = lines
        self._in_header = True
        self._carry = b"\n"  # the message start behaves like the end of a line
        self.finished = False

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        if self.finished:
            return b"", True
        if not self._in_header:
            return self._body(chunk)
        buf = self._carry + chunk
        ends = [i + n for i, n in ((buf.find(b"\n\n"), 2), (buf.find(b"\n\r\n"), 3)) if i >= 0]
        if not ends:
            self._carry = buf[-2:]
            return chunk, False
        cut = min(ends) - len(self._carry)
        self._in_header = False
        rest, done = self._body(chunk[cut:])
        return chunk[:cut] + rest, done

    def _body(self, chunk: bytes) -> tuple[bytes, bool]:
        if self._remaining <= 0:
            self.finished = True
            return b"", True
        count = chunk.count(b"\n")
        if count < self._remaining:
            self._remaining -= count
            return chunk, False
        pos = -1
        for _ in range(self._remaining):
            pos = chunk.index(b"\n", pos + 1)
        self._remaining = 0
        self.finished = True
        return chunk[: pos + 1], True


class Encoder:
    """What a :class:`MessageSender` does to the bytes: optional TOP cut, then stuffing."""

    def __init__(self, top_lines: int | None = None) -> None:
        self._stuffer = DotStuffer()
        self._cutter = TopCutter(min(top_lines, MAX_TOP_LINES)) if top_lines is not None else None

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        done = False
        if self._cutter is not None:
            chunk, done = self._cutter.feed(chunk)
        return self._stuffer.feed(chunk), done

    def finish(self) -> bytes:
        return self._stuffer.finish()


def encode_all(data: bytes, top_lines: int | None = None, chunk_size: int = 1 << 30) -> bytes:
    """The whole multi-line body for ``data`` (tests and small answers)."""
    enc = Encoder(top_lines)
    out = []
    for i in range(0, len(data), chunk_size):
        piece, done = enc.feed(data[i : i + chunk_size])
        out.append(piece)
        if done:
            break
    out.append(enc.finish())
    return b"".join(out)


def read_chunk(source: IO[bytes], size: int) -> bytes:
    """Blocking: the next chunk; closes ``source`` at the end of the file."""
    data = source.read(size)
    if len(data) < size:
        source.close()
    return data


@implementer(IPushProducer)
class MessageSender:
    """Streams one open message file to ``transport`` as a POP3 multi-line body.

    Contract: ``start()`` registers this producer (streaming) with the
    transport and returns a Deferred fired with True when the whole body and
    its terminator were written and the producer is unregistered, with False
    if the connection was lost first, or failing if reading failed (the
    caller must then drop the connection: the answer is incomplete).  The
    file is always closed.  ``first`` is a chunk already read (saves one
    thread hop for small messages); ``on_progress`` is called per chunk
    (the session resets its idle timer).
    """

    def __init__(
        self,
        transport: Any,
        runner: BlockingRunner,
        source: IO[bytes],
        encoder: Encoder,
        chunk_size: int,
        first: bytes = b"",
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.runner = runner
        self.source = source
        self.encoder = encoder
        self.chunk_size = chunk_size
        self.on_progress = on_progress
        self._first = first
        self._paused = False
        self._reading = False
        self._pumping = False
        self._finished = False
        self._done: defer.Deferred[bool] = defer.Deferred()

    # -- public ----------------------------------------------------------------
    def start(self) -> defer.Deferred[bool]:
        self.transport.registerProducer(self, True)
        if self._first or self.source.closed:
            first, self._first = self._first, b""
            self._got(first)
        else:
            self._pump()
        return self._done

    def abort(self) -> None:
        """Stop now (the session is closing): unregister, close the file, fire False."""
        if self._finished:
            return
        self.transport.unregisterProducer()
        self._end(False)

    # -- IPushProducer -----------------------------------------------------------
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        self._end(False)

    # -- internals -----------------------------------------------------------------
    def _pump(self) -> None:
        """Read chunks while not paused.  Loops instead of recursing, so a
        runner that answers synchronously cannot exhaust the stack."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not (self._paused or self._reading or self._finished):
                self._reading = True
                d = self.runner.run(read_chunk, self.source, self.chunk_size)
                d.addCallbacks(self._got, self._failed)
                if self._reading:
                    break  # the answer comes later; _got pumps again
        finally:
            self._pumping = False

    def _got(self, chunk: bytes) -> None:
        self._reading = False
        if self._finished:
            self._close_file()
            return
        if self.on_progress is not None:
            self.on_progress()
        out, cut = self.encoder.feed(chunk)
        if out:
            self.transport.write(out)
        if cut or len(chunk) < self.chunk_size or self.source.closed:
            self.transport.write(self.encoder.finish())
            self.transport.unregisterProducer()
            self._end(True)
        elif not self._pumping:
            self._pump()

    def _failed(self, failure: Failure) -> None:
        self._reading = False
        if self._finished:
            return
        self.transport.unregisterProducer()
        self._close_file()
        self._finished = True
        self._done.errback(failure)

    def _end(self, complete: bool) -> None:
        if self._finished:
            return
        self._finished = True
        if not self._reading:
            self._close_file()
        self._done.callback(complete)

    def _close_file(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.failure("closing a message file failed")
