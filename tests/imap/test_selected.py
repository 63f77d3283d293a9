"""Selected-state commands: FETCH, STORE, SEARCH, EXPUNGE, COPY/MOVE, UID forms, CLOSE."""

from __future__ import annotations

import re
from pathlib import Path

from tests.imap.support import Client, add_user, claim_recent, deliver, make_context, message


def selected(tmp_path: Path, n: int = 3) -> Client:
    ctx = make_context(tmp_path)
    add_user(ctx)
    for i in range(1, n + 1):
        deliver(ctx, message(i))
    claim_recent(ctx)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    return c


def test_fetch_items(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("FETCH 1 (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    assert out.startswith(b"* 1 FETCH (FLAGS () UID 1 RFC822.SIZE ")
    assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "message 1"' in out
    assert b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"' in out
    out = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    assert b"BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: message 1\r\n\r\n" in out
    assert b"BODY[TEXT] {19}\r\nBody of message 1\r\n" in out
    out = c.ok("FETCH 1 (RFC822.HEADER)")
    assert b"RFC822.HEADER {" in out and b"\\Seen" not in out
    out = c.ok("FETCH 1 ALL")
    assert b"ENVELOPE" in out and b"FLAGS" in out


def test_partial_fetch_returns_only_the_slice(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("FETCH 1 BODY.PEEK[]<0.4>")
    assert b"BODY[]<0> {4}\r\nFrom)" in out
    out = c.ok("FETCH 1 BODY.PEEK[TEXT]<5.2>")
    assert b"BODY[TEXT]<5> {2}\r\nof)" in out
    out = c.ok("FETCH 1 BODY.PEEK[]<99999.10>")
    assert b"BODY[]<99999> {0}\r\n)" in out


def test_nonexistent_part_is_empty(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("FETCH 1 BODY.PEEK[4.2]")
    assert b"BODY[4.2] {0}\r\n" in out


def test_non_peek_fetch_sets_seen(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("FETCH 1 BODY[TEXT]")
    assert b"FLAGS (\\Seen)" in out
    out = c.ok("FETCH 2 RFC822")
    assert b"FLAGS (\\Seen)" in out
    out = c.ok("FETCH 1:3 FLAGS")
    assert out.count(b"\\Seen") == 2
    c.ok("FETCH 3 BINARY[1]")
    assert c.ok("FETCH 3 FLAGS").count(b"\\Seen") == 1


def test_binary(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    deliver(
        ctx,
        b"Subject: b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"aGVsbG8gd29ybGQ=\r\n",
    )
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    out = c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"BINARY[1] ~{11}\r\nhello world" in out and b"BINARY.SIZE[1] 11" in out


def test_fetch_errors(tmp_path: Path) -> None:
    c = selected(tmp_path)
    assert c.cmd("FETCH 9 FLAGS").startswith(b"t3 BAD")
    assert c.cmd("FETCH 1 (FLAGS FOO)").startswith(b"t4 BAD")
    assert c.cmd("FETCH x FLAGS").startswith(b"t5 BAD")
    assert c.cmd("FETCH 1").startswith(b"t6 BAD")


def test_uid_fetch(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("UID FETCH 2:* FLAGS")
    assert out.startswith(b"* 2 FETCH (UID 2 FLAGS ())\r\n* 3 FETCH (UID 3 FLAGS ())")
    out = c.ok("UID FETCH 100:* FLAGS")  # n:* with n > max still returns the last message
    assert out.startswith(b"* 3 FETCH (UID 3 FLAGS ())")
    out = c.ok("UID FETCH 50 FLAGS")
    assert out == b"t5 OK FETCH completed\r\n"


def test_store(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("STORE 1:2 +FLAGS (\\Flagged $Important)")
    assert b"* 1 FETCH (FLAGS (\\Flagged $Important))" in out
    out = c.ok("STORE 1 -FLAGS.SILENT (\\Flagged)")
    assert b"FETCH" not in out
    out = c.ok("UID STORE 2 FLAGS (\\Answered)")
    assert b"* 2 FETCH (UID 2 FLAGS (\\Answered))" in out
    out = c.ok("FETCH 1:2 FLAGS")
    assert b"* 1 FETCH (FLAGS ($Important))" in out
    assert c.cmd("STORE 1 +FLAGS (\\Bogus)").startswith(b"t7 BAD")
    assert c.cmd("STORE 1 FROB (\\Seen)").startswith(b"t8 BAD")


def test_search(tmp_path: Path) -> None:
    c = selected(tmp_path)
    c.ok("STORE 2 +FLAGS (\\Seen)")
    assert b"* SEARCH 1 3\r\n" in c.ok("SEARCH UNSEEN")
    assert b"* SEARCH 2\r\n" in c.ok('SEARCH SUBJECT "message 2"')
    assert b"* SEARCH 3\r\n" in c.ok('UID SEARCH BODY "of message 3"')
    assert b"* SEARCH 1 2 3\r\n" in c.ok("SEARCH CHARSET UTF-8 ALL")
    assert b"* SEARCH 2 3\r\n" in c.ok("SEARCH 2:*")
    assert b"* SEARCH 1 3\r\n" in c.ok("SEARCH OR 1 3")
    assert b"* SEARCH\r\n" in c.ok("SEARCH SUBJECT nothing-like-this")
    out = c.cmd("SEARCH CHARSET KOI8-R ALL")
    assert c.tagged(out).startswith(b"t11 NO [BADCHARSET (UTF-8 US-ASCII)]")
    assert c.cmd("SEARCH FROB").startswith(b"t12 BAD")
    assert c.cmd("SEARCH").startswith(b"t13 BAD")


def test_search_text_and_dates(tmp_path: Path) -> None:
    c = selected(tmp_path)
    assert b"* SEARCH 1 2 3\r\n" in c.ok("SEARCH SENTBEFORE 1-Jan-2000")
    assert b"* SEARCH 1 2 3\r\n" in c.ok("SEARCH SINCE 1-Jan-2000 LARGER 10")
    assert b"* SEARCH 1\r\n" in c.ok('SEARCH TEXT "message 1"')
    assert b"* SEARCH 3\r\n" in c.ok("UID SEARCH UID 3")


def test_expunge_and_uid_expunge(tmp_path: Path) -> None:
    c = selected(tmp_path, n=4)
    c.ok("STORE 1:4 +FLAGS.SILENT (\\Deleted)")
    out = c.ok("UID EXPUNGE 2:3")
    assert out == b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nt4 OK EXPUNGE completed\r\n"
    out = c.ok("EXPUNGE")
    assert out == b"* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nt5 OK EXPUNGE completed\r\n"
    assert b"* SEARCH\r\n" in c.ok("SEARCH ALL")


def test_copy_and_move_with_uidplus(tmp_path: Path) -> None:
    c = selected(tmp_path)
    out = c.ok("COPY 1:2 Archive")
    m = re.search(rb"t3 OK \[COPYUID (\d+) 1:2 1:2\] COPY completed", out)
    assert m, out
    out = c.ok("UID MOVE 3 Trash")
    assert re.search(rb"\* OK \[COPYUID \d+ 3 1\] Moved\r\n\* 3 EXPUNGE\r\nt4 OK", out), out
    out = c.cmd("COPY 1 Nope")
    assert c.tagged(out).startswith(b"t5 NO [TRYCREATE]")
    out = c.ok("MOVE 1 Archive")
    assert b"* 1 EXPUNGE" in out
    out = c.ok("STATUS Archive (MESSAGES)")
    assert b"(MESSAGES 3)" in out


def test_close_expunges_unselect_does_not(tmp_path: Path) -> None:
    c = selected(tmp_path)
    c.ok("STORE 1 +FLAGS (\\Deleted)")
    out = c.ok("UNSELECT")
    assert b"EXPUNGE" not in out
    c.ok("SELECT INBOX")
    out = c.ok("CLOSE")
    assert b"EXPUNGE" not in out
    assert b"MESSAGES 2" in c.ok("STATUS INBOX (MESSAGES)")
    assert c.cmd("FETCH 1 FLAGS").startswith(b"t8 BAD")


def test_check_noop(tmp_path: Path) -> None:
    c = selected(tmp_path)
    c.ok("CHECK")
    deliver(c.ctx, message(9))
    out = c.ok("NOOP")
    assert b"* 4 EXISTS\r\n" in out and b"RECENT" in out
