"""MULTIAPPEND (RFC 3502): several messages in one APPEND, all or nothing,
APPENDUID with a uid-set (RFC 4315 + RFC 3502), after the RFC's example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mailsuite.imap import reader
from tests.imap.support import USER, Client, add_user, make_context, message

MSG1 = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.example.net\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)
MSG2 = (
    b"Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)\r\n"
    b"From: Joe Mooch <mooch@OWaTaGu.example.net>\r\n"
    b"Subject: Re: afternoon meeting\r\n"
    b"To: foobar@blurdybloop.example.com\r\n"
    b"Message-Id: <a0434793874930@OWaTaGu.example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"3:30 is fine with me.\r\n"
)


def client(tmp_path: Path, quota_bytes: int = 0, quota_messages: int = 0, **imap: Any) -> Client:
    ctx = make_context(tmp_path, imap=imap or None)
    add_user(ctx, quota_bytes=quota_bytes, quota_messages=quota_messages)
    ctx.store.account(USER).ensure_created()
    c = Client(ctx)
    c.login()
    return c


def count(c: Client, folder: str = "INBOX") -> int:
    box = c.ctx.store.account(USER).open(folder)
    box.sync()
    return len(box.messages())


def test_capability(tmp_path: Path) -> None:
    assert b" MULTIAPPEND" in client(tmp_path).ok("CAPABILITY")


def test_rfc_example_two_messages(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE saved-messages")
    out = c.raw(b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(MSG1))
    assert out == b"+ Ready for literal data\r\n"
    out = c.raw(MSG1 + b' (\\Seen) " 7-Feb-1994 22:43:04 -0800" {%d}\r\n' % len(MSG2))
    assert out == b"+ Ready for literal data\r\n"
    out = c.raw(MSG2 + b"\r\n")
    m = re.fullmatch(rb"A003 OK \[APPENDUID (\d+) 1:2\] APPEND completed\r\n", out)
    assert m, out
    c.ok("SELECT saved-messages")
    out = c.ok("FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE " in out
    assert b'INTERNALDATE " 8-Feb-1994 06:43:04 +0000"' in out  # the same instant
    assert b"RFC822.SIZE %d" % len(MSG1) in out and b"RFC822.SIZE %d" % len(MSG2) in out
    assert out.index(b"afternoon meeting") < out.index(b"Re: afternoon meeting")


def test_rfc_example_missing_mailbox_trycreate(tmp_path: Path) -> None:
    c = client(tmp_path)
    out = c.raw(
        b"A004 APPEND bogusname (\\Flagged) {%d+}\r\n%s {%d+}\r\n%s\r\n"
        % (len(MSG1), MSG1, len(MSG2), MSG2)
    )
    assert out.startswith(b"A004 NO [TRYCREATE]")


def test_rfc_example_quota_refused_before_second_literal(tmp_path: Path) -> None:
    # A005: the second literal would exceed the quota: refused before "+",
    # and the first message is not stored either
    c = client(tmp_path, quota_bytes=len(MSG1) + 100)
    out = c.raw(b"A005 APPEND INBOX (\\Flagged) {%d}\r\n" % len(MSG1))
    assert out.startswith(b"+ ")
    out = c.raw(MSG1 + b" {%d}\r\n" % len(MSG2))
    assert out.startswith(b"A005 NO [OVERQUOTA]"), out
    assert count(c) == 0
    assert c.ok("NOOP")  # the connection is in step again


def test_all_or_nothing_when_storing_fails(tmp_path: Path) -> None:
    # the message-count quota stops the third message inside the storage:
    # the two stored before it are removed again
    c = client(tmp_path, quota_messages=2)
    msgs = [message(i) for i in range(3)]
    cmd = b"a APPEND INBOX" + b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in msgs) + b"\r\n"
    out = c.raw(cmd)
    assert out.startswith(b"a NO [OVERQUOTA]"), out
    assert count(c) == 0
    assert c.ctx.store.account(USER).usage() == (0, 0)
    out = c.raw(b"b APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(MSG1), MSG1, len(MSG2), MSG2))
    assert re.match(rb"b OK \[APPENDUID \d+ 3:4\]", out), out  # the removed two used 1:2


def test_empty_message_cancels_everything(tmp_path: Path) -> None:
    c = client(tmp_path)
    out = c.raw(b"a APPEND INBOX {%d+}\r\n%s {0+}\r\n\r\n" % (len(MSG1), MSG1))
    assert out.startswith(b"a NO")
    assert count(c) == 0


@pytest.mark.parametrize(
    "middle",
    [
        b" (\\Bogus) {5+}\r\nhello",
        b' "31-Foo-2020 10:00:00 +0100" {5+}\r\nhello',
        b" (\\Seen) (\\Seen) {5+}\r\nhello",
        b' "01-Feb-2020 10:00:00 +0100"',
        b" (\\Seen)",
        b" NIL {5+}\r\nhello",
    ],
)
def test_syntax_error_in_a_later_message_stores_nothing(tmp_path: Path, middle: bytes) -> None:
    c = client(tmp_path)
    out = c.raw(b"a APPEND INBOX {%d+}\r\n%s%s\r\n" % (len(MSG1), MSG1, middle))
    assert out.startswith(b"a BAD"), out
    assert count(c) == 0


def test_selected_mailbox_sees_every_message(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("SELECT INBOX")
    msgs = [message(i) for i in range(5)]
    cmd = b"a APPEND INBOX" + b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in msgs) + b"\r\n"
    out = c.raw(cmd)
    assert b"* 5 EXISTS\r\n" in out and re.search(rb"a OK \[APPENDUID \d+ 1:5\]", out)


def test_each_message_against_the_limit_and_the_command_bounded(tmp_path: Path) -> None:
    c = client(tmp_path, max_literal_size=1000)
    body = b"x" * 898 + b"\r\n"
    assert c.raw(b"a APPEND INBOX {1001}\r\n").startswith(b"a NO [TOOBIG]")
    # eleven messages of 900 octets fit (10 x the limit), a twelfth does not
    head = b"b APPEND INBOX"
    for _ in range(11):
        assert c.raw(head + b" {900}\r\n") == b"+ Ready for literal data\r\n"
        head = body
    out = c.raw(body + b" {900}\r\n")
    assert out.startswith(b"b NO [TOOBIG]"), out
    assert count(c) == 0
    cmd = b"c APPEND INBOX" + b" {900+}\r\n" + body + b" {900+}\r\n" + body + b"\r\n"
    assert re.match(rb"c OK \[APPENDUID \d+ 1:2\]", c.raw(cmd))


def test_small_literals_spool_once_the_command_holds_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled = []
    real = reader._open_spool

    def counting(directory: Path) -> Any:
        spooled.append(directory)
        return real(directory)

    monkeypatch.setattr(reader, "_open_spool", counting)
    monkeypatch.setattr(reader, "APPEND_MEMORY", 2000)
    c = client(tmp_path)
    msgs = [message(i, b"y" * 500 + b"\r\n") for i in range(6)]  # ~600 octets each
    cmd = b"a APPEND INBOX" + b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in msgs) + b"\r\n"
    out = c.raw(cmd)
    assert re.match(rb"a OK \[APPENDUID \d+ 1:6\]", out), out
    assert len(spooled) == 3  # the first three stay in memory (< 2000 octets)
    c.ok("SELECT INBOX")
    fetched = c.ok("FETCH 6 BODY.PEEK[]")
    assert msgs[5] in fetched
