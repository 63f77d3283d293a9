"""Tokenizer, sequence sets and FETCH attribute parsing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsuite.imap.fetchatts import FetchAtt, parse_fetch_atts
from mailsuite.imap.parser import (
    Literal8,
    ParseError,
    literal_at_end,
    parse_sequence_set,
    tokenize,
)


def tok(line: bytes, *rest: bytes) -> list[object]:
    return tokenize([line, *rest])


def test_atoms_strings_lists() -> None:
    assert tok(b'a1 LOGIN "joe" pw') == ["a1", "LOGIN", b"joe", "pw"]
    assert tok(b"a FETCH 1 (FLAGS UID)") == ["a", "FETCH", "1", ["FLAGS", "UID"]]
    assert tok(b"a X ((a) ()) NIL") == ["a", "X", [["a"], []], "NIL"]


def test_quoted_escapes() -> None:
    assert tok(rb'a LOGIN "a \"b\" \\c" x') == ["a", "LOGIN", b'a "b" \\c', "x"]
    with pytest.raises(ParseError):
        tok(rb'a LOGIN "bad \n escape"')
    with pytest.raises(ParseError):
        tok(b'a LOGIN "unterminated')


def test_quoted_8bit_allowed() -> None:
    assert tok('a SEARCH CHARSET UTF-8 TEXT "привет"'.encode())[-1] == "привет".encode()


def test_literals() -> None:
    assert tok(b"a LOGIN {3}", b"joe", b" {2+}", b"pw", b"") == ["a", "LOGIN", b"joe", b"pw"]
    assert tok(b"a APPEND x ~{3}", b"a\0b", b"") == ["a", "APPEND", "x", b"a\0b"]
    assert isinstance(tok(b"a APPEND x ~{1}", b"\0", b"")[-1], Literal8)
    with pytest.raises(ParseError):
        tok(b"a APPEND x {1}", b"\0", b"")  # NUL only in literal8
    with pytest.raises(ParseError):
        tok(b"a X {5} trailing", b"abcde", b"")


def test_literal_announcement() -> None:
    ann = literal_at_end(b"a APPEND INBOX {310}")
    assert ann is not None and ann.size == 310 and not ann.non_sync
    ann = literal_at_end(b"a APPEND INBOX {310+}")
    assert ann is not None and ann.non_sync
    ann = literal_at_end(b"a APPEND INBOX ~{5}")
    assert ann is not None and ann.binary
    assert literal_at_end(b'a LOGIN "x{5}"') is None
    assert literal_at_end(b"a NOOP") is None


def test_sections_stay_one_atom() -> None:
    tokens = tok(b"a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)")
    assert tokens[3] == ["BODY.PEEK[HEADER.FIELDS (From To)]<0.100>", "UID"]


def test_unbalanced() -> None:
    for bad in (b"a X (", b"a X )", b"a X ((a)"):
        with pytest.raises(ParseError):
            tok(bad)


def test_atom_rejects_8bit_and_controls() -> None:
    with pytest.raises(ParseError):
        tok("a SELECT böx".encode())
    with pytest.raises(ParseError):
        tok(b"a SELECT b\x01x")


def test_sequence_sets() -> None:
    s = parse_sequence_set("1,3:5,7:*")
    assert s.resolve(9) == [(1, 1), (3, 5), (7, 9)]
    assert parse_sequence_set("5:2").resolve(10) == [(2, 5)]
    assert parse_sequence_set("*:4").resolve(3) == [(3, 4)]
    assert parse_sequence_set("1:3,2:6,8").resolve(10) == [(1, 6), (8, 8)]
    for bad in ("", "0", "1:0", "a", "1,,2", "4294967296", "1:"):
        with pytest.raises(ParseError):
            parse_sequence_set(bad)


def test_sequence_set_8000_ranges_linear() -> None:
    text = ",".join(f"{i}:{i + 1}" for i in range(1, 32000, 4))
    ranges = parse_sequence_set(text).resolve(100000)
    assert len(ranges) == 8000


def test_fetch_atts() -> None:
    atts = parse_fetch_atts([["UID", "BODY.PEEK[1.2.HEADER.FIELDS.NOT (x-a B)]<5.10>"]])
    assert atts[0] == FetchAtt("UID")
    a = atts[1]
    assert a.name == "BODY" and a.peek and a.part == (1, 2)
    assert a.specifier == "HEADER.FIELDS.NOT" and a.fields == ("X-A", "B")
    assert a.partial == (5, 10)
    assert a.response_name() == "BODY[1.2.HEADER.FIELDS.NOT (X-A B)]<5>"
    assert not a.sets_seen
    assert parse_fetch_atts(["BODY[]"])[0].sets_seen
    assert [x.name for x in parse_fetch_atts(["FAST"])] == ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    assert parse_fetch_atts(["binary.size[1]"])[0].name == "BINARY.SIZE"
    assert parse_fetch_atts(["BODY[1.MIME]"])[0].specifier == "MIME"
    for bad in (
        "BODY[MIME]",
        "BODY[0]",
        "BODY[HEADER.FIELDS]",
        "BODY[]<0.0>",
        "BINARY[TEXT]",
        "FOO",
        "BODY[TEXT",
    ):
        with pytest.raises(ParseError):
            parse_fetch_atts([bad])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_tokenizer_fuzz_never_crashes(data: bytes) -> None:
    try:
        tokenize([data])
    except ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789:*,", max_size=60))
def test_sequence_set_fuzz(text: str) -> None:
    try:
        ranges = parse_sequence_set(text).resolve(50)
    except ParseError:
        return
    for (a, b), (c, _d) in itertools.pairwise(ranges):
        assert a <= b < c - 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fetch_att_fuzz(text: str) -> None:
    try:
        parse_fetch_atts([text])
    except ParseError:
        pass
