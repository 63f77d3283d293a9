from __future__ import annotations

from pathlib import Path

from tests.imap.support import Client, add_user, deliver, make_context, message


def test_login_select_fetch(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    c = Client(ctx)
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
    c.login()
    deliver(ctx, message(1))
    deliver(ctx, message(2))
    out = c.ok("SELECT INBOX")
    print(out.decode())
    assert b"* 2 EXISTS" in out
    out = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (Subject)])")
    print(out.decode())
    out = c.ok("FETCH 2 BODY[]")
    print(out.decode())
    assert b"\\Seen" in out
    out = c.ok('SEARCH SUBJECT "message 2"')
    assert b"* SEARCH 2\r\n" in out
    out = c.ok('LIST "" "*"')
    print(out.decode())
    out = c.ok("STORE 1 +FLAGS (\\Deleted)")
    out = c.ok("EXPUNGE")
    print(out.decode())
    assert b"* 1 EXPUNGE" in out
    c.ok("LOGOUT")
