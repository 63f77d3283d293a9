"""The SMTP client connection used by the queue (RFC 5321 §4.2, §4.5.2, §4.5.3.2).

A small protocol of our own rather than ``twisted.mail.smtp.ESMTPSender``:
the queue needs per-recipient replies, DSN parameters on MAIL and RCPT
(RFC 3461), SIZE/8BITMIME/SMTPUTF8 parameters, a TLS policy decided per
destination and the full text of each reply for bounces, none of which the
Twisted sender exposes.

:class:`SMTPClientProtocol` turns the byte stream into :class:`Reply` objects
(multi-line replies joined, lines bounded to ``MAX_LINE`` bytes, at most
``MAX_REPLY_LINES`` lines) and offers ``await proto.command("MAIL FROM:<a>")``.
Every wait for a reply has a timeout on the injected clock; when it expires
the connection is aborted and the wait fails with :class:`ConnectionFailed`.
:meth:`SMTPClientProtocol.send_body` streams a message from a file in chunks
read off the reactor thread, dot-stuffed (RFC 5321 §4.5.2) with bare LF made
CRLF, honouring the transport's flow control.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from mailsuite.protocol.flow import WriteGate

MAX_LINE = 4096
MAX_REPLY_LINES = 200
CHUNK = 64 * 1024

_REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])([ -]|$)(.*)")
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")


class ConnectionFailed(Exception):
    """The connection broke, timed out or the server spoke garbage."""


@dataclass(frozen=True)
class Reply:
    """An SMTP reply: the code and the text of each line."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(line.strip() for line in self.lines).strip()

    @property
    def enhanced(self) -> str:
        """The RFC 3463 enhanced code the server gave, or one derived from the
        reply class (RFC 3463 §3: X.0.0)."""
        match = _ENHANCED.match(self.lines[0].strip() if self.lines else "")
        if match and match.group(1) == str(self.code)[0]:
            return ".".join(match.groups())
        return f"{str(self.code)[0]}.0.0"

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class DotStuffer:
    """Streaming transform for DATA: bare LF -> CRLF, a leading ``.`` doubled."""

    def __init__(self) -> None:
        self._line_start = True
        self._pending_cr = False

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out = data.replace(b"\n.", b"\n..")
        if self._line_start and out.startswith(b"."):
            out = b"." + out
        if out:
            self._line_start = out.endswith(b"\n")
        return out

    def finish(self) -> bytes:
        """What ends the data: a missing final CRLF, then ``.CRLF``."""
        tail = b"\r\n" if self._pending_cr else b""
        if not self._pending_cr and not self._line_start:
            tail = b"\r\n"
        return tail + b".\r\n"


class SMTPClientProtocol(protocol.Protocol):
    """One client connection.  ``clock`` provides ``callLater``."""

    def __init__(self, clock: Any, timeout: float) -> None:
        self.clock = clock
        self.timeout = timeout
        self._buffer = b""
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._waiter: defer.Deferred[Reply] | None = None
        self._timer: Any = None
        self._lost: Failure | None = None
        self._error = ""
        self.connected_d: defer.Deferred[None] = defer.Deferred()
        self.tls = False

    # -- Twisted callbacks -------------------------------------------------
    def connectionMade(self) -> None:
        try:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]
        except Exception:
            pass

    def dataReceived(self, data: bytes) -> None:
        if self._error:
            return  # aborting: ignore whatever else arrives
        self._buffer += data
        while b"\n" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\n", 1)
            self._line(raw.rstrip(b"\r"))
            if self._error:
                return
        if len(self._buffer) > MAX_LINE:
            self._protocol_error("reply line too long")

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._lost = reason
        self._cancel_timer()
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.errback(ConnectionFailed(self._error or _describe(reason)))

    # -- parsing -----------------------------------------------------------
    def _line(self, raw: bytes) -> None:
        match = _REPLY_LINE.fullmatch(raw)
        if match is None or len(raw) > MAX_LINE:
            self._protocol_error("malformed reply")
            return
        self._lines.append(match.group(3).decode("utf-8", "replace"))
        if len(self._lines) > MAX_REPLY_LINES:
            self._protocol_error("reply too long")
            return
        if match.group(2) == b"-":
            return
        reply = Reply(int(match.group(1)), tuple(self._lines))
        self._lines = []
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            self._cancel_timer()
            waiter.callback(reply)
        else:
            self._replies.append(reply)

    def _protocol_error(self, why: str) -> None:
        self._error = f"protocol error: {why}"
        self.abort()

    # -- API ---------------------------------------------------------------
    def next_reply(self, timeout: float | None = None) -> defer.Deferred[Reply]:
        """The next reply from the server (queued replies first)."""
        if self._replies:
            return defer.succeed(self._replies.popleft())
        if self._lost is not None:
            return defer.fail(ConnectionFailed(self._error or _describe(self._lost)))
        assert self._waiter is None, "one outstanding reply wait at a time"
        self._waiter = defer.Deferred()
        self._timer = self.clock.callLater(timeout or self.timeout, self._timed_out)
        return self._waiter

    def command(self, line: str, timeout: float | None = None) -> defer.Deferred[Reply]:
        """Send one command line and wait for its reply."""
        transport: Any = self.transport
        transport.write(line.encode("utf-8") + b"\r\n")
        return self.next_reply(timeout)

    def start_tls(self, options: Any) -> None:
        """Switch to TLS (after a 220 to STARTTLS); buffered plaintext is discarded."""
        self._buffer = b""
        self._replies.clear()
        self.transport.startTLS(options)  # type: ignore[union-attr]
        self.tls = True

    async def send_body(self, read: Callable[[int], defer.Deferred[bytes]]) -> None:
        """Write the message (``read(n)`` gives the next chunk, b"" at the end)
        dot-stuffed and terminated by ``.CRLF``."""
        flow = WriteGate()
        transport: Any = self.transport
        transport.registerProducer(flow, True)
        try:
            stuffer = DotStuffer()
            while True:
                chunk = await read(CHUNK)
                if self._lost is not None:
                    raise ConnectionFailed(_describe(self._lost))
                if not chunk:
                    break
                transport.write(stuffer.feed(chunk))
                if flow.paused:
                    await flow.wait()
            transport.write(stuffer.finish())
        finally:
            if self._lost is None:
                transport.unregisterProducer()

    def quit(self) -> None:
        """Send QUIT and close when it is answered (or after a short wait)."""
        if self._lost is not None:
            return
        self._cancel_timer()
        self._waiter = None
        transport: Any = self.transport

        def close(_: object) -> None:
            transport.loseConnection()

        self.command("QUIT", timeout=min(self.timeout, 10.0)).addBoth(close)

    def abort(self) -> None:
        if self.transport is not None and self._lost is None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # -- timeouts ------------------------------------------------------------
    def _timed_out(self) -> None:
        self._timer = None
        self._error = "timeout waiting for the server"
        self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def _describe(reason: Failure) -> str:
    """A short log/bounce text for a lost connection."""
    value = reason.value
    name = type(value).__name__
    if name in ("ConnectionDone", "ConnectionLost"):
        return "connection closed by the server"
    if "SSL" in name or "TLS" in name or name == "Error":
        return "TLS handshake failed"
    return f"connection lost ({name})"
