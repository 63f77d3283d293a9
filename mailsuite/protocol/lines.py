"""Line framing shared by the SMTP, POP3 and IMAP servers.

What every mail protocol needs and what Twisted's ``LineReceiver`` gets
wrong for us (DESIGN.md §2):

* **Bounded lines.**  A line longer than ``max_line_length`` is never
  buffered whole: :meth:`LineProtocol.line_too_long` is called once and the
  rest of that line is discarded up to its terminator.  The protocol decides
  what to answer (SMTP inside DATA fails the message and closes; it never
  falls back to command mode).
* **Strict CRLF** (``strict_crlf = True``, SMTP): only ``CRLF`` ends a line;
  a bare CR or LF stays inside the line for the protocol to refuse (RFC 5321
  §2.3.8, the SMTP smuggling shapes).  Otherwise a bare LF also ends a line
  and one CR before it is dropped (IMAP, POP3 clients in the wild).
* **One command at a time, in order.**  If :meth:`line_received` returns a
  Deferred, no further input is dispatched until it fires: pipelined
  commands are answered strictly in order (RFC 2920 §3) and asynchronous
  handlers (disk, password hashing) cannot reorder replies.  While waiting,
  buffered input is bounded: reading pauses past ``max_buffer``.
* **Grouped replies** (opt-in, ``coalesce_output = True``, SMTP): output is
  collected while input is processed and written as one unit when the
  input runs dry or a handler waits with no further command buffered; it is
  held only while a handler's Deferred is pending *and* more input is
  buffered (RFC 2920 §3.2: replies to pipelined commands may be sent as a
  unit; the server never waits for client input while holding replies).
  :meth:`close` and :meth:`start_tls` write held output first.
* **Raw mode** for literals, DATA and BDAT: :meth:`set_raw_mode` delivers
  the next ``count`` bytes (or everything until :meth:`set_line_mode`) to
  :meth:`raw_data_received`.
* **STARTTLS** discards buffered plaintext (RFC 3207 §4.2, RFC 2595 §3.1,
  RFC 3501 §6.2.1): :meth:`start_tls` drops every byte received after the
  STARTTLS command line before the TLS layer is inserted.
* **TCP_NODELAY** on every connection (a request/response loop otherwise
  costs ~40 ms per command), idle timeouts on an injected clock, a
  connection id on every log line, and connection limits per IP and in
  total (:class:`ConnectionLimiter`).
"""

from __future__ import annotations

import itertools
from typing import Any

from twisted.internet import defer, interfaces, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

_ids = itertools.count(1)
LONG_LINE_HEAD = 256  # bytes of an over-long line kept for line_too_long()  # connection ids are only labels for log lines


class LineProtocol(protocol.Protocol):
    """Base protocol; subclasses implement :meth:`line_received` and friends.

    ``factory`` must be a :class:`LineFactory` (it provides the clock, the
    limiter and the TLS contexts).
    """

    max_line_length = 2048
    strict_crlf = False
    max_buffer = 1024 * 1024
    timeout: float | None = None
    coalesce_output = False

    factory: LineFactory
    transport: Any  # ITransport (+ ITLSTransport, IProducer); zope interfaces type poorly
    log = Logger()

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._busy = False  # a Deferred from line_received is pending
        self._discarding = False  # inside an over-long line
        self._raw_remaining: int | None = None  # None: line mode; -1: raw until set_line_mode
        self._paused = False
        self.long_line_head = b""  # first bytes of the last over-long line
        self._timeout_call: Any = None
        self._held: list[bytes] | None = None  # output grouped while processing input
        self.disconnecting = False
        self.conn_id = f"c{next(_ids)}"
        self.peer_host = ""
        self.tls_active = False

    # -- connection lifecycle -------------------------------------------
    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.peer_host = getattr(peer, "host", "") or "unix"
        try:
            self.transport.setTcpNoDelay(True)
        except Exception:
            pass  # UNIX sockets, StringTransport
        if interfaces.ISSLTransport.providedBy(self.transport):
            self.tls_active = True
        self.reset_timeout()
        self.log.info(
            "{cid} connect from {peer} ({proto})",
            cid=self.conn_id,
            peer=self.peer_host,
            proto=self.factory.role,
        )
        self.connection_started()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._cancel_timeout()
        self._held = None
        self.factory.connection_closed(self)
        self.log.info("{cid} disconnect", cid=self.conn_id)
        self.connection_ended(reason)

    # -- hooks for subclasses --------------------------------------------
    def connection_started(self) -> None:
        """Send the greeting."""

    def connection_ended(self, reason: Failure) -> None:
        """Release resources (abort deliveries, unsubscribe, forget POP3 DELEs)."""

    def line_received(self, line: bytes) -> defer.Deferred[Any] | None:
        """Handle one line (terminator removed).  Return a Deferred to hold
        further input until it fires."""
        raise NotImplementedError

    def line_too_long(self) -> defer.Deferred[Any] | None:
        """Called once for a line over ``max_line_length``; the rest of it is
        discarded.  ``self.long_line_head`` holds its first bytes (up to
        ``LONG_LINE_HEAD``, e.g. for an IMAP tag).  Default: close the connection."""
        self.close()
        return None

    def raw_data_received(self, data: bytes) -> defer.Deferred[Any] | None:
        """Bytes in raw mode (see :meth:`set_raw_mode`)."""
        raise NotImplementedError

    def timed_out(self) -> None:
        """The idle timeout expired.  Default: close."""
        self.close()

    # -- output ------------------------------------------------------------
    def send_line(self, line: bytes | str) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")

    def send(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            self.transport.write(data)

    def flush_output(self) -> None:
        """Write output held by ``coalesce_output`` now (one write)."""
        held, self._held = self._held, None
        if held and self.transport is not None:
            self.transport.write(b"".join(held))

    def close(self) -> None:
        """Close after the pending output is written; stop reading input."""
        if self.disconnecting:
            return
        self.disconnecting = True
        self._buffer.clear()
        self._cancel_timeout()
        self.flush_output()
        if self.transport is not None:
            self.transport.loseConnection()

    # -- modes -------------------------------------------------------------
    def set_raw_mode(self, count: int | None = None) -> None:
        """Deliver the next ``count`` bytes (all input if None) to raw_data_received."""
        self._raw_remaining = -1 if count is None else count

    def set_line_mode(self, extra: bytes = b"") -> None:
        """Back to lines; ``extra`` is input that raw mode received but did not use."""
        self._raw_remaining = None
        if extra:
            self._buffer[0:0] = extra

    @property
    def in_raw_mode(self) -> bool:
        return self._raw_remaining is not None

    # -- timeouts ------------------------------------------------------------
    def reset_timeout(self, seconds: float | None = None) -> None:
        """Restart the idle timer (``seconds`` overrides :attr:`timeout` from now on)."""
        if seconds is not None:
            self.timeout = seconds
        if not self.timeout or self.disconnecting:
            self._cancel_timeout()
            return
        call = self._timeout_call
        if call is not None and call.active():
            call.reset(self.timeout)  # cheaper than cancel + callLater on every read
        else:
            self._timeout_call = self.factory.clock.callLater(self.timeout, self._on_timeout)

    def _cancel_timeout(self) -> None:
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self._timeout_call = None

    def _on_timeout(self) -> None:
        self._timeout_call = None
        self.log.info("{cid} idle timeout", cid=self.conn_id)
        self.timed_out()

    # -- TLS -----------------------------------------------------------------
    def start_tls(self) -> None:
        """Insert TLS now.  Plaintext already received after the command line
        is discarded (RFC 3207 §4.2): it was not protected and must not be
        executed inside the TLS session.  Call after writing the "go ahead"."""
        self.flush_output()
        self._buffer.clear()
        self._discarding = False
        self.transport.startTLS(self.factory.tls_options())
        self.tls_active = True

    def tls_info(self) -> tuple[str, str] | None:
        """(protocol version, cipher name) of the TLS session, or None."""
        if not self.tls_active:
            return None
        try:
            conn = self.transport.getHandle()
            return conn.get_protocol_version_name(), conn.get_cipher_name()
        except Exception:
            return ("TLS", "unknown")

    # -- input ---------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self.disconnecting:
            return
        self.reset_timeout()
        self._buffer += data
        self._process()

    def _process(self) -> None:
        if self.coalesce_output and self._held is None:
            self._held = []
        while self._buffer and not self._busy and not self.disconnecting:
            if self._raw_remaining is not None:
                result = self._dispatch_raw()
            else:
                found, line = self._next_line()
                if not found:
                    break
                result = self._dispatch_line(line)
            if isinstance(result, defer.Deferred):
                self._wait(result)
        self._flow_control()
        if not (self._busy and self._buffer and not self.disconnecting):
            self.flush_output()

    def _dispatch_raw(self) -> Any:
        if self._raw_remaining == -1:
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            assert self._raw_remaining is not None
            chunk = bytes(self._buffer[: self._raw_remaining])
            del self._buffer[: len(chunk)]
            self._raw_remaining -= len(chunk)
            if self._raw_remaining == 0:
                self._raw_remaining = None
        return self._guard(self.raw_data_received, chunk)

    def _next_line(self) -> tuple[bool, bytes]:
        buf = self._buffer
        if self.strict_crlf:
            idx = buf.find(b"\r\n")
            end, skip = idx, 2
        else:
            idx = buf.find(b"\n")
            end, skip = idx, 1
            if idx > 0 and buf[idx - 1] == 0x0D:
                end = idx - 1
        if idx < 0:
            if len(buf) > self.max_line_length:
                # keep the last byte: it may be the CR of a CRLF split across reads
                keep = buf[-1:] if buf[-1:] == b"\r" else b""
                if not self._discarding:
                    self.long_line_head = bytes(buf[:LONG_LINE_HEAD])
                del buf[:]
                buf += keep
                if not self._discarding:
                    self._discarding = True
                    return True, _TOO_LONG
            return False, b""
        line = bytes(buf[:end])
        del buf[: idx + skip]
        if self._discarding:
            self._discarding = False
            return True, _SKIP
        if len(line) > self.max_line_length:
            self.long_line_head = line[:LONG_LINE_HEAD]
            return True, _TOO_LONG
        return True, line

    def _dispatch_line(self, line: bytes) -> Any:
        if line is _SKIP:
            return None
        if line is _TOO_LONG:
            return self._guard(self.line_too_long)
        return self._guard(self.line_received, line)

    def _guard(self, fn: Any, *args: Any) -> Any:
        """Run a handler; an unexpected exception is logged and closes the
        connection with the protocol's internal-error reply, never a traceback."""
        try:
            return fn(*args)
        except Exception:
            self.log.failure("{cid} internal error", cid=self.conn_id)
            self.internal_error()
            return None

    def internal_error(self) -> None:
        """Tell the client something broke (protocol-specific text) and close."""
        self.close()

    def _wait(self, d: defer.Deferred[Any]) -> None:
        self._busy = True

        def done(result: Any) -> Any:
            self._busy = False
            if isinstance(result, Failure):
                self.log.failure("{cid} internal error", result, cid=self.conn_id)
                self.internal_error()
                return None
            if not self.disconnecting:
                self._process()
            return None

        d.addBoth(done)

    def _flow_control(self) -> None:
        over = len(self._buffer) > self.max_buffer
        if over and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        elif not over and self._paused:
            self._paused = False
            self.transport.resumeProducing()


class _Marker(bytes):
    pass


_TOO_LONG = _Marker(b"")
_SKIP = _Marker(b"")


class ConnectionLimiter:
    """Counts open connections in total and per source address.

    Shared by every listener of one server (``limits.max_connections`` and
    ``limits.max_connections_per_ip``).  IPv6 sources are counted per /64.
    """

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.max_total = max_total
        self.max_per_ip = max_per_ip
        self.total = 0
        self.per_ip: dict[str, int] = {}

    @staticmethod
    def source_key(host: str) -> str:
        if ":" in host:
            from ipaddress import IPv6Network

            try:
                return str(IPv6Network(f"{host}/64", strict=False))
            except ValueError:
                return host
        return host

    def acquire(self, host: str) -> bool:
        key = self.source_key(host)
        if self.total >= self.max_total or self.per_ip.get(key, 0) >= self.max_per_ip:
            return False
        self.total += 1
        self.per_ip[key] = self.per_ip.get(key, 0) + 1
        return True

    def release(self, host: str) -> None:
        key = self.source_key(host)
        self.total -= 1
        left = self.per_ip.get(key, 1) - 1
        if left:
            self.per_ip[key] = left
        else:
            self.per_ip.pop(key, None)


class _Refuse(protocol.Protocol):
    transport: Any

    def __init__(self, message: bytes) -> None:
        self.message = message

    def connectionMade(self) -> None:
        if self.message:
            self.transport.write(self.message)
        self.transport.loseConnection()


class LineFactory(protocol.Factory):
    """Base factory: builds one protocol per connection within the limits.

    ``role`` names the listener (smtp, submission, pop3, imaps ...);
    ``context`` is the :class:`mailsuite.context.ServerContext`;
    ``refusal`` is the protocol's "too many connections" line.
    """

    protocol: Any = None
    refusal = b""

    def __init__(self, context: Any, role: str, implicit_tls: bool = False) -> None:
        self.context = context
        self.role = role
        self.implicit_tls = implicit_tls
        self.clock = context.reactor
        self.limiter: ConnectionLimiter = context.limiter
        self._hosts: dict[int, str] = {}

    def tls_options(self) -> Any:
        return self.context.tls.server_options()

    def buildProtocol(self, addr: Any) -> protocol.Protocol | None:
        host = getattr(addr, "host", "") or "unix"
        if not self.limiter.acquire(host):
            LineProtocol.log.warn("refusing connection from {host}: connection limit", host=host)
            return _Refuse(self.refusal)
        p = self.build(addr)
        p.factory = self
        worker = getattr(self.context, "worker", 0)
        if worker:  # connection ids stay unique in the shared log
            p.conn_id = f"w{worker}{p.conn_id}"
        self._hosts[id(p)] = host
        return p

    def build(self, addr: Any) -> LineProtocol:
        """Make the protocol instance (override to pass arguments)."""
        p: LineProtocol = self.protocol()
        return p

    def connection_closed(self, p: LineProtocol) -> None:
        host = self._hosts.pop(id(p), None)
        if host is not None:
            self.limiter.release(host)
