"""Dot-stuffing, TOP cutting and the streaming producer (mailsuite.pop3.stream)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from mailsuite.pop3.stream import DotStuffer, Encoder, MessageSender, TopCutter, encode_all
from mailsuite.threads import InlineRunner

KiB = 1024


# -- references written the slow, obvious way ------------------------------------
def _lines(data: bytes) -> list[bytes]:
    """Lines with their terminators (LF ends a line)."""
    return data.splitlines(keepends=True) if b"\r" not in data else _split_lf(data)


def _split_lf(data: bytes) -> list[bytes]:
    out, start = [], 0
    while (i := data.find(b"\n", start)) >= 0:
        out.append(data[start : i + 1])
        start = i + 1
    if start < len(data):
        out.append(data[start:])
    return out


def reference(data: bytes, top: int | None = None) -> bytes:
    """RFC 1939 §3 the slow way: line by line; line ends kept as stored."""
    lines = _split_lf(data)
    if top is not None:
        blank = next((i for i, x in enumerate(lines) if x in (b"\n", b"\r\n")), None)
        if blank is not None:
            lines = lines[: blank + 1 + top]
    body = b"".join(b"." + x if x.startswith(b".") else x for x in lines)
    if body and not body.endswith(b"\n"):
        body += b"\n" if body.endswith(b"\r") else b"\r\n"
    return body + b".\r\n"


def unstuff(wire: bytes) -> bytes:
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    lines = wire[:-3].split(b"\r\n")[:-1] if wire != b".\r\n" else []
    return b"".join((x[1:] if x.startswith(b".") else x) + b"\r\n" for x in lines)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed_pieces(pieces: list[bytes], top: int | None = None) -> bytes:
    enc = Encoder(top)
    out = []
    for p in pieces:
        chunk, done = enc.feed(p)
        out.append(chunk)
        if done:
            break
    out.append(enc.finish())
    return b"".join(out)


message_bytes = st.lists(
    st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b" ", b".\r\n", b"x" * 7]),
    max_size=60,
).map(b"".join)


# -- DESIGN.md §2 regression shapes ------------------------------------------------
def test_dot_at_every_16k_chunk_boundary_is_stuffed() -> None:
    first = b"Subject: t\r\n" + b"X" * (16 * KiB - 14) + b"\r\n"
    dotted = b"." + b"x" * (16 * KiB - 3) + b"\r\n"  # starts exactly at each boundary
    data = first + dotted * 5
    assert len(first) == len(dotted) == 16 * KiB
    for size in (16 * KiB, 64 * KiB, 1, 7):
        wire = encode_all(data, chunk_size=size)
        assert wire == reference(data)
        assert b"\r\n.x" not in wire  # every dot line went out stuffed
        assert unstuff(wire) == data


def test_crlf_split_across_chunks_is_not_doubled() -> None:
    data = b"a\r\n.b\r\n"
    for size in range(1, len(data) + 1):
        wire = encode_all(data, chunk_size=size)
        assert wire == b"a\r\n..b\r\n.\r\n"
        assert b"\r\r" not in wire


def test_line_ends_kept_and_end_is_added() -> None:
    assert encode_all(b"a\n.b\nc") == b"a\n..b\nc\r\n.\r\n"  # the store never gives bare LF
    assert encode_all(b"") == b".\r\n"
    assert encode_all(b"a\r") == b"a\r\n.\r\n"
    assert encode_all(b".") == b"..\r\n.\r\n"


@settings(max_examples=300)
@given(message_bytes, st.lists(st.integers(min_value=0, max_value=1000), max_size=8))
def test_stuffing_is_chunking_independent(data: bytes, cuts: list[int]) -> None:
    wire = feed_pieces(split(data, cuts))
    assert wire == feed_pieces([data]) == reference(data)
    assert b"\r\r\n" not in wire or b"\r\r" in data  # a CR is never added before CRLF
    bare = data.replace(b"\r\n", b"")
    if b"\r" not in bare and b"\n" not in bare:  # CRLF-only, as the store hands it out
        assert unstuff(wire) == (data if data.endswith(b"\n") or not data else data + b"\r\n")


# -- TOP ------------------------------------------------------------------------------
def test_top_zero_sends_header_and_blank_line() -> None:
    msg = b"A: 1\r\nB: 2\r\n\r\nline1\r\n.line2\r\nline3\r\n"
    assert encode_all(msg, top_lines=0) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"
    assert encode_all(msg, top_lines=2) == b"A: 1\r\nB: 2\r\n\r\nline1\r\n..line2\r\n.\r\n"
    assert encode_all(msg, top_lines=99) == reference(msg)
    assert encode_all(b"A: 1\r\n", top_lines=0) == b"A: 1\r\n.\r\n"  # no body at all
    assert encode_all(b"\r\nbody\r\n", top_lines=0) == b"\r\n.\r\n"  # empty header


@settings(max_examples=300)
@given(
    message_bytes,
    st.integers(min_value=0, max_value=5),
    st.lists(st.integers(min_value=0, max_value=1000), max_size=8),
)
def test_top_matches_reference_for_any_chunking(data: bytes, top: int, cuts: list[int]) -> None:
    assert feed_pieces(split(data, cuts), top) == reference(data, top)


def test_top_cutter_stops_reading() -> None:
    cut = TopCutter(1)
    assert cut.feed(b"H: v\r\n\r\nbody1\r\nbo") == (b"H: v\r\n\r\nbody1\r\n", True)
    assert cut.feed(b"more") == (b"", True)


def test_stuffer_state_across_feeds() -> None:
    s = DotStuffer()
    assert s.feed(b"abc\r") == b"abc\r"
    assert s.feed(b"\n.") == b"\n.."
    assert s.feed(b"x") == b"x"
    assert s.finish() == b"\r\n.\r\n"
    s = DotStuffer()
    assert s.feed(b"abc\r\n") == b"abc\r\n"
    assert s.feed(b".") == b".."
    assert s.feed(b"\r") == b"\r"
    assert s.finish() == b"\n.\r\n"


# -- the producer --------------------------------------------------------------------
class PausingTransport(StringTransport):
    """Pauses its producer when more than ``limit`` bytes wait unsent."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.max_pending = 0
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        super().write(data)
        pending = len(self.io.getvalue())
        self.max_pending = max(self.max_pending, pending)
        if pending > self.limit and self.producer is not None:
            self.producer.pauseProducing()

    def drain(self) -> None:
        self.sent += self.io.getvalue()
        self.io.seek(0)
        self.io.truncate()
        if self.producer is not None:
            self.producer.resumeProducing()


def _big_message(path: Path, size: int) -> bytes:
    line = b"." + b"y" * 61 + b"\r\n"  # 64 bytes: a dotted line starts at every chunk edge
    data = (line * (size // len(line) + 1))[:size]
    path.write_bytes(data)
    return data


def test_sender_streams_with_flow_control(tmp_path: Path) -> None:
    data = _big_message(tmp_path / "m", 20 * 1024 * KiB)
    transport = PausingTransport(limit=256 * KiB)
    source = open(tmp_path / "m", "rb")  # noqa: SIM115 (the sender closes it)
    sender = MessageSender(transport, InlineRunner(), source, Encoder(), chunk_size=16 * KiB)
    results: list[bool] = []
    sender.start().addCallback(results.append)
    rounds = 0
    while not results:
        transport.drain()
        rounds += 1
    transport.drain()
    assert results == [True]
    assert transport.producer is None  # unregistered at the end
    assert rounds > 50  # it really waited for the consumer
    assert transport.max_pending < 256 * KiB + 2 * 16 * KiB  # never the whole message
    assert unstuff(bytes(transport.sent)) == data
    assert sender.source.closed


def test_sender_stop_closes_file(tmp_path: Path) -> None:
    _big_message(tmp_path / "m", 1024 * KiB)
    transport = PausingTransport(limit=64 * KiB)
    source = open(tmp_path / "m", "rb")  # noqa: SIM115 (the sender closes it)
    sender = MessageSender(transport, InlineRunner(), source, Encoder(), chunk_size=16 * KiB)
    results: list[bool] = []
    sender.start().addCallback(results.append)
    assert not results
    sender.stopProducing()  # the connection was lost
    assert results == [False]
    assert source.closed


def test_sender_read_error_fails(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError("disk on fire")

    transport = StringTransport()
    sender = MessageSender(transport, InlineRunner(), Broken(), Encoder(), chunk_size=4)
    failures: list[object] = []
    sender.start().addErrback(failures.append)
    assert len(failures) == 1
    assert transport.producer is None


def test_sender_with_prefetched_small_message() -> None:
    source = io.BytesIO(b"")
    source.close()
    transport = StringTransport()
    sender = MessageSender(
        transport, InlineRunner(), source, Encoder(), chunk_size=64, first=b".hi\r\n"
    )
    results: list[bool] = []
    sender.start().addCallback(results.append)
    assert results == [True]
    assert transport.value() == b"..hi\r\n.\r\n"
