"""The queue's SMTP client connection over StringTransport with a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from mailsuite.delivery.queue_client import (
    ConnectionFailed,
    DotStuffer,
    Reply,
    SMTPClientProtocol,
)


def _unstuff(wire: bytes) -> bytes:
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[:-3].split(b"\r\n")[:-1]
    return b"".join((ln[1:] if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)


def _stuff(chunks: list[bytes]) -> bytes:
    s = DotStuffer()
    return b"".join(s.feed(c) for c in chunks) + s.finish()


def test_dot_stuffing_across_chunks() -> None:
    assert _stuff([b".a\r\n", b".", b"b\r", b"\n.\r\n"]) == b"..a\r\n..b\r\n..\r\n.\r\n"
    assert _stuff([b"no final newline"]) == b"no final newline\r\n.\r\n"
    assert _stuff([b"bare\nlf\n"]) == b"bare\r\nlf\r\n.\r\n"
    assert _stuff([b"x\r"]) == b"x\r\n.\r\n"
    assert _stuff([]) == b".\r\n"


PIECES = [b".", b"a", b"\r\n", b"..", b"b\r\n.", b"\r\n.\r\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=30), st.integers(0, 200))
def test_dot_stuffing_round_trips(parts: list[bytes], cut: int) -> None:
    message = b"".join(parts)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    wire = _stuff([message[:cut], message[cut:]])
    assert wire.endswith(b"\r\n.\r\n")
    assert b"\r\n.\r\n" not in wire[:-3]  # the terminator appears only at the end
    assert _unstuff(wire) == message


def test_reply_properties() -> None:
    r = Reply(550, ("5.1.1 no such user", "more"))
    assert r.enhanced == "5.1.1" and r.permanent and not r.positive
    assert str(r) == "550 5.1.1 no such user more"
    assert Reply(451, ("try later",)).enhanced == "4.0.0"
    assert Reply(250, ("5.1.1 wrong class",)).enhanced == "2.0.0"


class ClientTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.proto = SMTPClientProtocol(self.clock, timeout=30)
        self.tr = StringTransport()
        self.proto.makeConnection(self.tr)

    def test_multiline_and_queued_replies(self) -> None:
        self.proto.dataReceived(b"220 hi\r\n250-one\r\n250-SIZE 10\r\n250 DSN\r\n")
        r1 = self.successResultOf(self.proto.next_reply())
        self.assertEqual((r1.code, r1.lines), (220, ("hi",)))
        r2 = self.successResultOf(self.proto.next_reply())
        self.assertEqual(r2.lines, ("one", "SIZE 10", "DSN"))

    def test_command_waits_for_reply(self) -> None:
        d = self.proto.command("MAIL FROM:<a@b>")
        self.assertEqual(self.tr.value(), b"MAIL FROM:<a@b>\r\n")
        self.assertNoResult(d)
        self.proto.dataReceived(b"250 ok\r")
        self.assertNoResult(d)
        self.proto.dataReceived(b"\n")
        self.assertEqual(self.successResultOf(d).code, 250)

    def test_timeout_aborts(self) -> None:
        d = self.proto.next_reply()
        self.clock.advance(31)
        self.assertTrue(self.tr.disconnecting or getattr(self.tr, "disconnected", False))
        from twisted.internet.error import ConnectionAborted
        from twisted.python.failure import Failure

        self.proto.connectionLost(Failure(ConnectionAborted()))
        f = self.failureResultOf(d, ConnectionFailed)
        self.assertIn("timeout", str(f.value))

    def test_garbage_and_overlong_lines_abort(self) -> None:
        d = self.proto.next_reply()
        self.proto.dataReceived(b"hello there\r\n")
        self.assertTrue(self.tr.disconnecting or getattr(self.tr, "disconnected", False))
        from twisted.internet.error import ConnectionAborted
        from twisted.python.failure import Failure

        self.proto.connectionLost(Failure(ConnectionAborted()))
        self.assertIn("protocol error", str(self.failureResultOf(d, ConnectionFailed).value))
        other = SMTPClientProtocol(self.clock, timeout=30)
        tr = StringTransport()
        other.makeConnection(tr)
        other.dataReceived(b"250-" + b"x" * 10000)
        self.assertTrue(tr.disconnecting or getattr(tr, "disconnected", False))

    def test_send_body_streams_and_stuffs(self) -> None:
        chunks = [b"Subject: x\r\n\r\n.dot\r\n", b"end", b""]

        def read(n: int) -> defer.Deferred[bytes]:
            return defer.succeed(chunks.pop(0))

        d = defer.Deferred.fromCoroutine(self.proto.send_body(read))
        self.successResultOf(d)
        self.assertEqual(self.tr.value(), b"Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n")


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_server_bytes_give_replies_or_an_abort(chunks: list[bytes]) -> None:
    proto = SMTPClientProtocol(task.Clock(), timeout=30)
    tr = StringTransport()
    proto.makeConnection(tr)
    for chunk in chunks:  # never raises, never buffers without bound
        proto.dataReceived(chunk)
        assert len(proto._buffer) <= 4096 + 300
    while True:
        d = proto.next_reply()
        if not d.called:
            break
        reply = []
        d.addBoth(reply.append)
        assert isinstance(reply[0], Reply)
        assert 200 <= reply[0].code <= 599
