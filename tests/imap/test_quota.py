"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA (refused), the STATUS
items DELETED/DELETED-STORAGE and [OVERQUOTA] on APPEND/COPY/MOVE, after
the RFC's examples.  Limits come from the real SQLite directory, usage from
the real Maildir store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.imap.support import USER, Client, add_user, deliver, make_context, message

# RFC 9208 §4.3.1's APPEND example message (326 octets)
RFC_MSG = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    b"\r\n"
)


def client(tmp_path: Path, quota_bytes: int = 0, quota_messages: int = 0) -> Client:
    ctx = make_context(tmp_path)
    add_user(ctx, quota_bytes=quota_bytes, quota_messages=quota_messages)
    ctx.store.account(USER).ensure_created()
    c = Client(ctx)
    c.login()
    return c


def usage(c: Client) -> tuple[int, int]:
    used, count = c.ctx.store.account(USER).usage()
    return int(used), int(count)


def test_capabilities(tmp_path: Path) -> None:
    c = client(tmp_path)
    caps = c.ok("CAPABILITY").split(b"\r\n")[0].split()
    for cap in (b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"):
        assert cap in caps
    assert b"QUOTASET" not in caps  # SETQUOTA is not offered (§4.1.3)


def test_rfc_example_getquotaroot_inbox(tmp_path: Path) -> None:
    c = client(tmp_path, quota_bytes=10 * 1024 * 1024, quota_messages=1000)
    for i in range(42):
        deliver(c.ctx, message(i))
    used, count = usage(c)
    assert count == 42
    out = c.raw(b"G0002 GETQUOTAROOT INBOX\r\n")
    kib = (used + 1023) // 1024
    assert out == (
        b'* QUOTAROOT "INBOX" ""\r\n'
        b'* QUOTA "" (STORAGE %d 10240 MESSAGE 42 1000)\r\n'
        b"G0002 OK GETQUOTAROOT completed\r\n" % kib
    )


def test_rfc_example_getquota(tmp_path: Path) -> None:
    c = client(tmp_path, quota_bytes=10923847 * 1024)
    deliver(c.ctx, b"x" * 1500 + b"\r\n")  # 1502 octets: 2 units of 1024, rounded up
    out = c.raw(b'G0001 GETQUOTA ""\r\n')
    assert out == b'* QUOTA "" (STORAGE 2 10923847)\r\nG0001 OK GETQUOTA completed\r\n'
    out = c.raw(b'G0003 GETQUOTA "!partition/sda4"\r\n')
    assert out.startswith(b"G0003 NO [NONEXISTENT]")


def test_unlimited_user_has_an_empty_quota_list(tmp_path: Path) -> None:
    # §4.2.1: resources not named are not limited; an empty list: no limits
    c = client(tmp_path)
    out = c.ok("GETQUOTAROOT Archive")
    assert b'* QUOTAROOT "Archive" ""\r\n* QUOTA "" ()\r\n' in out


def test_getquotaroot_of_a_mailbox_not_created_yet(tmp_path: Path) -> None:
    # §4.1.2: the mailbox name need not exist
    c = client(tmp_path, quota_messages=5)
    out = c.ok('GETQUOTAROOT "Not/There/Yet"')
    assert b'* QUOTAROOT "Not/There/Yet" ""\r\n* QUOTA "" (MESSAGE 0 5)\r\n' in out


def test_limits_changed_by_the_administrator_show_at_once(tmp_path: Path) -> None:
    c = client(tmp_path, quota_messages=5)
    deliver(c.ctx, message(1))
    assert b'* QUOTA "" (MESSAGE 1 5)' in c.ok('GETQUOTA ""')
    directory: Any = c.ctx.directory
    directory.set_quota(USER, 2048, 7)
    out = c.ok('GETQUOTA ""')
    assert b'* QUOTA "" (STORAGE 1 2 MESSAGE 1 7)' in out


def test_setquota_is_refused_for_users(tmp_path: Path) -> None:
    c = client(tmp_path, quota_bytes=111 * 1024, quota_messages=1000)
    out = c.raw(b'S0001 SETQUOTA "" (STORAGE 510)\r\n')
    assert out.startswith(b"S0001 NO [NOPERM]")
    out = c.ok('GETQUOTA ""')  # nothing changed
    assert re.search(rb'\* QUOTA "" \(STORAGE \d+ 111 MESSAGE 0 1000\)', out)
    for bad in (
        'SETQUOTA ""',
        'SETQUOTA "" STORAGE',
        'SETQUOTA "" (STORAGE)',
        'SETQUOTA "" (STORAGE x)',
    ):
        assert c.tagged(c.cmd(bad)).startswith(b"t%d BAD" % c.n), bad
    assert c.tagged(c.cmd('SETQUOTA "" ()')).startswith(b"t%d NO [NOPERM]" % c.n)


def test_not_before_login(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    c = Client(ctx)
    assert c.tagged(c.cmd('GETQUOTA ""')).startswith(b"t1 BAD")
    assert b"QUOTA" not in c.ok("CAPABILITY")


def test_rfc_example_append_overquota(tmp_path: Path) -> None:
    # §4.3.1 Example 1: the quota is checked before the literal is accepted
    c = client(tmp_path, quota_bytes=1000)
    deliver(c.ctx, message(1, b"y" * 700 + b"\r\n"))
    c.ok("CREATE saved-messages")
    out = c.raw(b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(RFC_MSG))
    assert out.startswith(b"A003 NO [OVERQUOTA]"), out
    assert usage(c)[1] == 1
    # with a non-synchronising literal the data is read and refused
    out = c.raw(b"A004 APPEND saved-messages {%d+}\r\n" % len(RFC_MSG) + RFC_MSG + b"\r\n")
    assert out.startswith(b"A004 NO [OVERQUOTA]"), out
    assert usage(c)[1] == 1


def test_append_refused_when_message_count_is_reached(tmp_path: Path) -> None:
    c = client(tmp_path, quota_messages=1)
    out = c.raw(b"a APPEND INBOX {%d+}\r\n" % len(RFC_MSG) + RFC_MSG + b"\r\n")
    assert out.startswith(b"a OK [APPENDUID")
    out = c.raw(b"b APPEND INBOX {%d}\r\n" % len(RFC_MSG))
    assert out.startswith(b"b NO [OVERQUOTA]")
    assert b'* QUOTA "" (MESSAGE 1 1)' in c.ok('GETQUOTA ""')


def test_copy_and_move_over_quota(tmp_path: Path) -> None:
    c = client(tmp_path, quota_messages=4)
    for i in range(3):
        deliver(c.ctx, message(i))
    c.ok("SELECT INBOX")
    out = c.cmd("COPY 1:3 Archive")
    assert c.tagged(out).startswith(b"t%d NO [OVERQUOTA]" % c.n), out
    out = c.cmd("MOVE 2:3 Archive")  # a move needs the room too while it copies
    assert c.tagged(out).startswith(b"t%d NO [OVERQUOTA]" % c.n), out
    assert b"EXPUNGE" not in out
    c.ok("COPY 1 Archive")
    assert usage(c)[1] == 4
    assert b"* 1 EXISTS" in c.ok("SELECT Archive")


def test_rfc_example_status_deleted(tmp_path: Path) -> None:
    # §4.1.4: C: S0003 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
    c = client(tmp_path)
    sizes = []
    for i in range(12):
        flags = ("\\Deleted",) if i % 3 == 0 else ()
        data = message(i)
        deliver(c.ctx, data, flags=flags)
        if flags:
            sizes.append(len(data))
    out = c.raw(b"S0003 STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)\r\n")
    assert out == (
        b'* STATUS "INBOX" (MESSAGES 12 DELETED 4 DELETED-STORAGE %d)\r\n'
        b"S0003 OK STATUS completed\r\n" % sum(sizes)
    )
