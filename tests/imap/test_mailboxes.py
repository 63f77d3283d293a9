"""Authenticated-state commands: LIST/LSUB/CREATE/DELETE/RENAME/STATUS/APPEND/SELECT/EXAMINE."""

from __future__ import annotations

from pathlib import Path

from tests.imap.support import Client, add_user, deliver, make_context, message


def client(tmp_path: Path) -> Client:
    ctx = make_context(tmp_path)
    add_user(ctx)
    c = Client(ctx)
    c.login()
    return c


def test_list_special_use_and_children(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE Projects/2024/")
    c.ok("CREATE Projects/2025")
    out = c.ok('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in out
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in out
    assert b'* LIST (\\HasChildren) "/" "Projects"' in out
    assert b'* LIST (\\HasNoChildren) "/" "Projects/2024"' in out
    out = c.ok('LIST "" "%"')
    assert b'"Projects/2024"' not in out and b'"Projects"' in out
    out = c.ok('LIST "Projects/" "%"')
    assert out.count(b"* LIST") == 2
    out = c.ok('LIST "" ""')
    assert b'* LIST (\\Noselect) "/" ""' in out
    out = c.ok('LIST "" inbox')
    assert b'"INBOX"' in out
    out = c.ok('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)')
    assert b"INBOX" not in out and b"\\Trash" in out


def test_lsub_and_subscribe(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE a/b")
    c.ok("SUBSCRIBE a/b")
    out = c.ok('LSUB "" "*"')
    assert b'* LSUB () "/" "a/b"' in out
    out = c.ok('LSUB "" "%"')
    assert b'* LSUB (\\Noselect) "/" "a"' in out
    c.ok("UNSUBSCRIBE a/b")
    assert b'"a/b"' not in c.ok('LSUB "" "*"')


def test_create_delete_rename(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE Work")
    out = c.cmd("CREATE Work")
    assert c.tagged(out).startswith(b"t3 NO [ALREADYEXISTS]")
    c.ok("RENAME Work Play")
    out = c.ok('LIST "" "*"')
    assert b'"Play"' in out and b'"Work"' not in out
    c.ok("DELETE Play")
    out = c.cmd("DELETE Play")
    assert c.tagged(out).startswith(b"t7 NO [NONEXISTENT]")
    assert c.tagged(c.cmd("DELETE INBOX")).startswith(b"t8 NO")
    out = c.cmd('CREATE "bad.name"')
    assert c.tagged(out).startswith(b"t9 NO [CANNOT]")
    out = c.cmd('CREATE "a*b"')
    assert c.tagged(out).startswith(b"t10 NO [CANNOT]")


def test_status(tmp_path: Path) -> None:
    c = client(tmp_path)
    deliver(c.ctx, message(1))
    deliver(c.ctx, message(2), flags=("\\Seen",))
    out = c.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
    assert b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 UIDVALIDITY ' in out
    out = c.cmd("STATUS INBOX (MESSAGES FOO)")
    assert out.startswith(b"t3 BAD")
    out = c.cmd("STATUS Nope (MESSAGES)")
    assert c.tagged(out).startswith(b"t4 NO [NONEXISTENT]")


def test_append_without_flags_and_with_flags_and_date(tmp_path: Path) -> None:
    c = client(tmp_path)
    msg = message(1)
    out = c.raw(b"a APPEND INBOX {%d}\r\n" % len(msg))
    assert out.startswith(b"+ ")
    out = c.raw(msg + b"\r\n")
    assert out.startswith(b"a OK [APPENDUID ")
    out = c.raw(
        b'b APPEND INBOX (\\Seen $Work) "01-Feb-2020 10:00:00 +0100" {%d+}\r\n' % len(msg)
        + msg
        + b"\r\n"
    )
    assert out.startswith(b"b OK [APPENDUID ") and out.rstrip().endswith(b"APPEND completed")
    out = c.ok("SELECT INBOX")
    assert b"* 2 EXISTS" in out
    out = c.ok("FETCH 2 (FLAGS INTERNALDATE)")
    assert b"\\Seen" in out
    assert b'INTERNALDATE " 1-Feb-2020 09:00:00 +0000"' in out  # the same instant


def test_append_to_missing_mailbox_trycreate(tmp_path: Path) -> None:
    c = client(tmp_path)
    out = c.raw(b"a APPEND Nope {5+}\r\nHi!\r\n\r\n")
    assert out.startswith(b"a NO [TRYCREATE]")


def test_append_bad_arguments(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert c.raw(b"a APPEND INBOX (\\Bogus) {1+}\r\nx\r\n").startswith(b"a BAD")
    assert c.raw(b'a APPEND INBOX "31-Foo-2020 10:00:00 +0100" {1+}\r\nx\r\n').startswith(b"a BAD")
    assert c.raw(b"a APPEND INBOX\r\n").startswith(b"a BAD")


def test_append_to_selected_mailbox_announces_exists(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("SELECT INBOX")
    msg = message(1)
    out = c.raw(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert b"* 1 EXISTS\r\n" in out and b"a OK [APPENDUID" in out


def test_select_examine_responses(tmp_path: Path) -> None:
    c = client(tmp_path)
    deliver(c.ctx, message(1), flags=("\\Seen",))
    deliver(c.ctx, message(2))
    out = c.ok("SELECT INBOX")
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in out
    assert b"* OK [UNSEEN 2]" in out and b"[UIDNEXT 3]" in out
    assert b"OK [READ-WRITE]" in out
    out = c.ok("EXAMINE INBOX")
    assert b"[PERMANENTFLAGS ()]" in out and b"OK [READ-ONLY]" in out
    out = c.cmd("SELECT Nope")
    assert c.tagged(out).startswith(b"t4 NO [NONEXISTENT]")
    assert c.cmd("FETCH 1 FLAGS").startswith(b"t5 BAD")  # failed SELECT deselects


def test_examine_is_read_only(tmp_path: Path) -> None:
    c = client(tmp_path)
    deliver(c.ctx, message(1))
    c.ok("EXAMINE INBOX")
    out = c.ok("FETCH 1 (BODY[] FLAGS)")
    assert b"\\Seen" not in out
    assert c.tagged(c.cmd("STORE 1 +FLAGS (\\Flagged)")).startswith(b"t4 NO [READ-ONLY]")
    assert c.tagged(c.cmd("EXPUNGE")).startswith(b"t5 NO [READ-ONLY]")
    assert c.tagged(c.cmd("MOVE 1 Trash")).startswith(b"t6 NO [READ-ONLY]")
    c.ok("CLOSE")
    c.ok("SELECT INBOX")
    out = c.ok("FETCH 1 FLAGS")
    assert b"FLAGS (\\Recent)" in out  # EXAMINE left \Recent for this SELECT


def test_keywords_visible_after_reselect(tmp_path: Path) -> None:
    c = client(tmp_path)
    msg = message(1)
    c.raw(b"b APPEND INBOX (\\Seen $Work) {%d+}\r\n" % len(msg) + msg + b"\r\n")
    out = c.ok("SELECT INBOX")
    assert b"$Work" in out
    assert b"FLAGS (\\Seen \\Recent $Work)" in c.ok("FETCH 1 FLAGS")


def test_recent_belongs_to_the_first_session(tmp_path: Path) -> None:
    c = client(tmp_path)
    deliver(c.ctx, message(1))
    deliver(c.ctx, message(2))
    assert b"(RECENT 2)" in c.ok("STATUS INBOX (RECENT)")
    out = c.ok("EXAMINE INBOX")  # read-only: sees \Recent, does not take it
    assert b"* 2 RECENT" in out
    out = c.ok("SELECT INBOX")
    assert b"* 2 RECENT" in out
    assert b"FLAGS (\\Recent)" in c.ok("FETCH 1 FLAGS")
    other = Client(c.ctx)
    other.login()
    assert b"* 0 RECENT" in other.ok("SELECT INBOX")
    deliver(c.ctx, message(3))  # both sessions hear of it: recent in exactly one
    assert b"* 3 EXISTS\r\n* 3 RECENT\r\n" in c.ok("NOOP")  # c syncs first: claims it
    assert b"* 3 EXISTS\r\n* 0 RECENT\r\n" in other.ok("NOOP")
    assert b"* SEARCH 1 2 3\r\n" in c.ok("SEARCH NEW")
    assert b"* SEARCH\r\n" in other.ok("SEARCH RECENT")
