"""Pure parsers: paths, parameters, DATA/BDAT framing (with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsuite.smtp.address import parse_path
from mailsuite.smtp.body import ChunkDecoder, ContentChecker, DotDecoder
from mailsuite.smtp.headers import TraceInfo, received
from mailsuite.smtp.params import split_params, xtext_decode
from mailsuite.smtp.replies import Refused


@pytest.mark.parametrize(
    "text, mailbox, rest",
    [
        ("<a@b.example>", "a@b.example", ""),
        ("<a.b+c@b.example> SIZE=1", "a.b+c@b.example", " SIZE=1"),
        ('<"a.b"@b.example>', "a.b@b.example", ""),
        ("<@x.example,@y.example:a@b.example>", "a@b.example", ""),
        ("<a@[192.0.2.1]>", "a@[192.0.2.1]", ""),
        ("<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", ""),
        ("<jörg@bücher.example>", "jörg@bücher.example", ""),
        ("<>", "", ""),
    ],
)
def test_parse_path(text: str, mailbox: str, rest: str) -> None:
    path, tail = parse_path(text, allow_null=True)
    assert (path.mailbox, tail) == (mailbox, rest)


@pytest.mark.parametrize(
    "text",
    [
        "a@b.example",
        "<a@b.example",
        "<a@b.example>x",
        "<a@@b.example>",
        "<a..b@b.example>",
        "<.a@b.example>",
        "<a@b.example.>",
        "<a@-b.example>",
        "<a@b..example>",
        "<a@[300.1.1.1]>",
        "<a@[hello]>",
        "<a b@b.example>",
        "<a@b.example\r>",
        "<" + "a" * 65 + "@b.example>",
        "<a@" + "b" * 250 + ".example>",
    ],
)
def test_parse_path_refuses(text: str) -> None:
    with pytest.raises(Refused):
        parse_path(text, allow_null=True)


def test_quoted_local_part_kept_and_flagged() -> None:
    path, _ = parse_path('<"a@b"@c.example>', allow_null=False)
    assert path.quoted and path.domain == "c.example"


def test_params() -> None:
    assert split_params(" A=1  b") == {"A": "1", "B": None}
    assert xtext_decode("a+2Bb+3D") == "a+b="
    for bad in ("a+2b", "a+", "a=b"):
        with pytest.raises(Refused):
            xtext_decode(bad)


def decode_all(decoder: DotDecoder, pieces: list[bytes]) -> tuple[list[bytes], bytes]:
    """Feed like the session does: after the end, later reads are commands."""
    lines: list[bytes] = []
    for i, piece in enumerate(pieces):
        lines += decoder.feed(piece)
        if decoder.ended:
            return lines, decoder.leftover + b"".join(pieces[i + 1 :])
    return lines, b""


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return [p for p in out if p]


line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"r").replace(b"\n", b"n"))


@settings(max_examples=300, deadline=None)
@given(st.lists(line_text, max_size=20), st.lists(st.integers(0, 2000), max_size=8))
def test_dot_decoder_any_split(lines: list[bytes], cuts: list[int]) -> None:
    """Stuffed content followed by the terminator decodes to the original
    lines whatever the read boundaries; what follows is left over."""
    stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
    wire = stuffed + b".\r\nQUIT\r\n"
    decoder = DotDecoder(100)
    got, leftover = decode_all(decoder, split_at(wire, cuts))
    assert decoder.ended and got == lines and leftover == b"QUIT\r\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_dot_decoder_ends_only_at_crlf_dot_crlf(data: bytes, cuts: list[int]) -> None:
    wire = b"\r\n" + data
    decoder = DotDecoder(10_000)
    decode_all(decoder, split_at(wire, cuts))
    assert decoder.ended == (b"\r\n.\r\n" in wire)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_chunk_decoder_roundtrip(data: bytes, cuts: list[int]) -> None:
    decoder = ChunkDecoder(10_000)
    lines: list[bytes] = []
    for piece in split_at(data, cuts):
        lines += decoder.feed(piece)
    lines += decoder.finish()
    rebuilt = b"\r\n".join(lines) + (b"\r\n" if lines else b"")
    assert rebuilt in (data, data + b"\r\n")


def test_checker_flags_bare_characters() -> None:
    for bad in (b"a\rb", b"a\nb", b"a\0b", b"\r", b"x\n"):
        checker = ContentChecker(1000)
        checker.add_lines([b"ok", bad])
        assert checker.bad_chars and not checker.pending
    checker = ContentChecker(1000)
    checker.add_lines([b"Subject: x", b"", b"body"])
    assert not checker.failed and checker.take() == b"Subject: x\r\n\r\nbody\r\n"


def test_checker_drops_return_path_only_in_header() -> None:
    checker = ContentChecker(10_000)
    checker.add_lines([b"Return-Path: <a@b>", b" folded", b"X: 1"])
    checker.add_lines([b"return-path : <c@d>", b"", b"Return-Path: body keeps it"])
    assert checker.take() == b"X: 1\r\n\r\nReturn-Path: body keeps it\r\n"


def test_checker_size_limit() -> None:
    checker = ContentChecker(10)
    checker.add_lines([b"12345678"])
    assert not checker.too_big
    checker.add_lines([b"x"])
    assert checker.too_big and not checker.pending and checker.size == 13


def test_checker_header_end_found_in_any_batch() -> None:
    for batches in (
        [[b"A: 1", b"", b"Return-Path: body"]],
        [[b"A: 1"], [b"", b"Return-Path: body"]],
        [[b"A: 1", b"B: 2"], [b"C: 3", b""], [b"Return-Path: body"]],
        [[b"", b"Return-Path: body"]],
    ):
        checker = ContentChecker(1000)
        for lines in batches:
            checker.add_lines(lines)
        # the header ended before the Return-Path line: it is body and kept
        assert checker.take() == b"".join(line + b"\r\n" for b in batches for line in b)
        assert not checker._in_header


def test_received_header_is_safe() -> None:
    info = TraceInfo(
        hostname="mail.example.test",
        helo="evil)\tname(",
        peer="2001:db8::1",
        esmtp=True,
        tls=("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
        user="a(b)@example.test",
        smtputf8=False,
        message_id="c1.1",
        recipients=("a@example.test", "b@example.test"),
    )
    text = received(info).decode()
    assert text.startswith("Received: from unknown ([IPv6:2001:db8::1])\r\n")
    assert "(authenticated sender: a?b?@example.test)" in text
    assert "with ESMTPSA id c1.1;" in text and "for <" not in text
    assert all(line.startswith(("Received:", "\t")) for line in text.split("\r\n")[:-1])


def test_received_date_is_the_current_utc_second() -> None:
    import email.utils
    import time

    info = TraceInfo("mail.example.test", "c.example", "192.0.2.1", True, None, None, False,
                     "c1.2", ("a@example.test",))  # fmt: skip
    before = int(time.time())
    text = received(info).decode()
    after = int(time.time())
    date = text.rsplit(";", 1)[1].strip()
    assert date.endswith("+0000")
    assert before <= email.utils.parsedate_to_datetime(date).timestamp() <= after
    assert received(info).decode().startswith(text.split(";")[0])
