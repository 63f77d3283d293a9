"""Arbitrary bytes never make the MIME layer raise, and bounded nesting."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsuite.imap.fetchrender import FetchItem, render_item
from mailsuite.mime.bodystructure import bodystructure
from mailsuite.mime.decode import BinaryError
from mailsuite.mime.envelope import envelope
from mailsuite.mime.sections import section
from mailsuite.mime.structure import MAX_DEPTH, Part, parse_message

_PIECES = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"--c\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b'Content-Type: multipart/alternative; boundary="c"\r\n',
        b"Content-Type: message/rfc822\r\n",
        b'Content-Type: text/plain; charset="utf-8";\r\n',
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b'From: "A \\" B" <a@b>, (c) d@e;, g: h@i;\r\n',
        b"Subject: =?utf-8?q?h=C3=A9?= \xff\x00\r\n",
        b" folded\r\n",
        b"MIME-Version: 1.0\r\n",
        b"aGVsbG8=\r\n",
        b"=3D=\r\n",
        b"\xd0\x9f\xd1\x80\r\n",
    ]
)
_MESSAGES = st.one_of(st.binary(max_size=2000), st.lists(_PIECES, max_size=60).map(b"".join))
_ITEMS = [
    FetchItem("BODY", "", ()),
    FetchItem("BODY", "1", (1,)),
    FetchItem("BODY", "1.1.MIME", (1, 1), "MIME"),
    FetchItem("BODY", "2.HEADER", (2,), "HEADER"),
    FetchItem("BODY", "TEXT", (), "TEXT"),
    FetchItem("BODY", "HEADER.FIELDS (FROM)", (), "HEADER.FIELDS", ("FROM",), (1, 5)),
    FetchItem("BINARY", "1", (1,)),
    FetchItem("BINARY.SIZE", "", ()),
]


@settings(max_examples=300, deadline=None)
@given(_MESSAGES)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    part = parse_message(raw)
    assert bodystructure(part, raw).startswith(b"(")
    assert bodystructure(part, raw, extensible=False).startswith(b"(")
    assert envelope(part, raw).startswith(b"(")
    for p in part.walk():
        assert p.start <= p.body_start <= p.end <= len(raw)
    assert Part.from_data(part.to_data()) == part
    assert Part.from_data(json.loads(json.dumps(part.to_data()))) == part
    assert section(raw, part, "") == raw
    for item in _ITEMS:
        try:
            render_item(item, raw, part)
        except BinaryError:
            pass


def test_deep_nesting_is_bounded() -> None:
    header = b"Content-Type: message/rfc822\r\n\r\n"
    raw = header * 5000 + b"Subject: bottom\r\n\r\nbody\r\n"
    part = parse_message(raw)
    depth = 0
    p = part
    while p.children:
        p = p.children[0]
        depth += 1
    assert depth <= MAX_DEPTH
    assert bodystructure(part).count(b"rfc822") <= MAX_DEPTH + 1


def test_many_boundaries_are_bounded() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--x\r\n\r\na\r\n" * 20000
    part = parse_message(raw)
    assert len(part.children) <= 10000
