"""Regression shapes from DESIGN.md §2 (where twisted.mail.imap4 was wrong)."""

from __future__ import annotations

import datetime

import pytest

from mailsuite.imap.fetchrender import FetchItem, quote, render_item, render_items
from mailsuite.imap.searchmatch import (
    MessageContext,
    SearchParseError,
    matches,
    parse_search_keys,
    parse_search_program,
)
from mailsuite.mime.bodystructure import bodystructure
from mailsuite.mime.decode import BinaryError, qp_decode
from mailsuite.mime.envelope import envelope
from mailsuite.mime.sections import section
from mailsuite.mime.structure import parse_message

PLAIN = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def test_defaults_7bit_and_us_ascii() -> None:
    assert bodystructure(parse_message(PLAIN)) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)'
    )


def test_boundary_and_name_case_preserved() -> None:
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/Mixed; BOUNDARY="AbC"\r\n\r\n'
        b'--AbC\r\nContent-Type: application/pdf; Name="My File.PDF"\r\n\r\nx\r\n--AbC--\r\n'
    )
    bs = bodystructure(parse_message(raw))
    assert b'"BOUNDARY" "AbC"' in bs
    assert b'("Name" "My File.PDF")' in bs
    assert b'"Mixed"' in bs


def test_message_rfc822_field_order() -> None:
    inner = b"Subject: inner\r\nFrom: x@y\r\n\r\nbody\r\n"
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"--b--\r\n"
    )
    bs = bodystructure(parse_message(raw), extensible=False)
    # type subtype params id desc enc size (envelope) (body) lines
    assert bs == (
        b'(("message" "rfc822" NIL NIL NIL "7bit" 33 (NIL "inner" ((NIL NIL "x" "y"))'
        b' ((NIL NIL "x" "y")) ((NIL NIL "x" "y")) NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0) 3) "mixed")'
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: \xff\xfe caf\xe9\r\nFrom: \xd0\x9f <a@b>\r\n\r\nx\r\n",
        b"Content-Type: text/plain;\r\n\r\nx\r\n",
        b"Content-Type: text/plain; charset=utf-8;\r\n\r\nx\r\n",
        b"Content-Type: ;;;\r\n\r\nx\r\n",
    ],
)
def test_8bit_header_and_trailing_semicolon(raw: bytes) -> None:
    part = parse_message(raw)
    assert bodystructure(part).startswith(b"(")
    assert envelope(part).startswith(b"(")


def test_trailing_semicolon_keeps_params() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8;\r\n\r\nx\r\n"
    assert b'("charset" "utf-8")' in bodystructure(parse_message(raw))


def test_8bit_subject_is_a_literal() -> None:
    env = envelope(parse_message(b"Subject: caf\xc3\xa9\r\n\r\n"))
    assert env.startswith(b"(NIL {5}\r\ncaf\xc3\xa9 NIL")


def test_partial_fetch_returns_only_the_slice() -> None:
    part = parse_message(PLAIN)
    item = FetchItem("BODY", "", (), "", (), (5, 10), True)
    assert render_item(item, PLAIN, part) == b"BODY[]<5> {10}\r\n" + PLAIN[5:15]
    item = FetchItem("BODY", "TEXT", (), "TEXT", (), (2, 100))
    assert render_item(item, PLAIN, part) == b"BODY[TEXT]<2> {5}\r\nllo\r\n"
    item = FetchItem("BODY", "", (), "", (), (10**8, 10))
    assert render_item(item, PLAIN, part) == b"BODY[]<100000000> {0}\r\n"


def test_nonexistent_part_is_empty() -> None:
    assert section(PLAIN, parse_message(PLAIN), "3") == b""
    assert section(PLAIN, parse_message(PLAIN), "1") == b"hello\r\n"
    assert section(PLAIN, parse_message(PLAIN), "1.MIME") == PLAIN[:-7]


def test_header_fields() -> None:
    part = parse_message(PLAIN)
    assert section(PLAIN, part, "HEADER.FIELDS (subject)") == b"Subject: hi\r\n\r\n"
    assert section(PLAIN, part, "HEADER.FIELDS.NOT (Subject)") == b"From: a@example.com\r\n\r\n"


def test_quote() -> None:
    assert quote(None) == b"NIL"
    assert quote('a "b" \\') == b'"a \\"b\\" \\\\"'
    assert quote(b"a\r\nb") == b"{4}\r\na\r\nb"


def test_render_items_and_simple_attributes() -> None:
    when = datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(-datetime.timedelta(hours=7))
    )
    items = [
        FetchItem("UID"),
        FetchItem("FLAGS"),
        FetchItem("INTERNALDATE"),
        FetchItem("RFC822.SIZE"),
    ]
    out = render_items(items, None, None, flags=["\\Seen"], uid=7, internaldate=when, size=42)
    assert (
        out == b'(UID 7 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 42)'
    )
    assert render_item(FetchItem("RFC822.HEADER"), PLAIN, None).startswith(
        b"RFC822.HEADER {36}\r\n"
    )


def test_binary_errors_are_typed() -> None:
    raw = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbody\r\n"
    with pytest.raises(BinaryError) as err:
        render_item(FetchItem("BINARY", "1", (1,)), raw, None)
    assert err.value.code == "UNKNOWN-CTE"
    with pytest.raises(BinaryError):
        qp_decode(b"bad =ZZ\r\n")
    assert qp_decode(b"a=3D=\r\nb  \r\n") == b"a=b\r\n"


def _ctx(raw: bytes, **kw: object) -> MessageContext:
    base: dict[str, object] = {
        "uid": 5,
        "seq": 2,
        "flags": ["\\Seen", "$Work"],
        "size": len(raw),
        "internaldate": datetime.datetime(2021, 3, 4, 23, 0, tzinfo=datetime.UTC),
        "max_seq": 3,
        "max_uid": 9,
        "raw": raw,
    }
    base.update(kw)
    return MessageContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["SEEN"], True),
        (["UNSEEN"], False),
        (["KEYWORD", "$work"], True),
        (["NOT", "KEYWORD", "$Work"], False),
        (["OR", "DELETED", "FROM", b"EXAMPLE"], True),
        (["SUBJECT", b"H\xc3\xa9"], True),
        (["BODY", b"WORLD"], True),
        (["BODY", b"Subject"], False),
        (["TEXT", b"subject"], True),
        (["HEADER", b"X-Missing", b""], False),
        (["HEADER", b"subject", b""], True),
        (["ON", "4-Mar-2021"], True),
        (["SENTON", "2-Jan-2020"], True),
        (["SENTBEFORE", "2-Jan-2020"], False),
        (["2:*"], True),
        (["UID", "1:4,6"], False),
        (["UID", "*"], False),
        ([["LARGER", "10", "SMALLER", "1000"]], True),
    ],
)
def test_search_keys(keys: list[object], expected: bool) -> None:
    raw = (
        b"From: A <a@example.com>\r\nSubject: =?utf-8?q?h=C3=A9llo?=\r\n"
        b"Date: Thu, 2 Jan 2020 23:30:00 -0800\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVsbG8gd29ybGQ=\r\n"
    )
    assert matches(parse_search_keys(keys), _ctx(raw)) is expected  # type: ignore[arg-type]


def test_search_syntax_errors() -> None:
    for bad in (["FROM"], ["BOGUS"], ["BEFORE", "31-Feb-2020"], [[]], ["LARGER", "x"]):
        with pytest.raises(SearchParseError):
            parse_search_keys(bad)  # type: ignore[arg-type]
    with pytest.raises(SearchParseError) as err:
        parse_search_program(["CHARSET", "KOI8-R", "ALL"])
    assert err.value.code == "BADCHARSET"


def test_large_sequence_set_is_fast_to_build() -> None:
    text = ",".join(f"{i}:{i + 1}" for i in range(1, 16000, 2))
    tree = parse_search_keys([text])
    assert matches(tree, _ctx(b"", seq=8001))
