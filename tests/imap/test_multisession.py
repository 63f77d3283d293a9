"""Several sessions on one mailbox (RFC 3501 §7), IDLE (RFC 2177)."""

from __future__ import annotations

import io
from pathlib import Path

from mailsuite.storage.store import MaildirStore
from tests.imap.support import USER, Client, add_user, deliver, make_context, message


def two_sessions(tmp_path: Path, n: int = 3) -> tuple[Client, Client]:
    ctx = make_context(tmp_path)
    add_user(ctx)
    for i in range(1, n + 1):
        deliver(ctx, message(i))
    a, b = Client(ctx), Client(ctx)
    for c in (a, b):
        c.login()
        c.ok("SELECT INBOX")
    return a, b


def test_expunge_in_one_session_while_other_fetches(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert b"* 2 EXPUNGE" in a.ok("EXPUNGE")
    # b still believes in 3 messages: FETCH must not send EXPUNGE, and
    # sequence number 3 is still message 3 (never message 3's neighbour).
    out = b.cmd("FETCH 3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"EXPUNGE" not in out
    assert b"* 3 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {22}\r\nSubject: message 3" in out
    out = b.cmd("FETCH 2 FLAGS")  # the expunged one: not served, no EXPUNGE yet
    assert b"* 2 EXPUNGE" not in out and b.tagged(out).startswith(b"t4 NO [EXPUNGEISSUED]")
    out = b.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert b"* 2 EXPUNGE" not in out
    out = b.cmd("SEARCH ALL")
    assert b"* 2 EXPUNGE" not in out and b"* SEARCH 1 3\r\n" in out
    out = b.ok("NOOP")
    assert out == b"* 2 EXPUNGE\r\nt7 OK NOOP completed\r\n"
    assert b"* SEARCH 1 2\r\n" in b.ok("SEARCH ALL")


def test_uid_fetch_may_report_expunge(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    out = b.ok("UID FETCH 1:* FLAGS")
    assert out.endswith(b"* 1 EXPUNGE\r\nt3 OK FETCH completed\r\n")


def test_flag_changes_of_other_session_reported(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    a.ok("STORE 2 +FLAGS (\\Answered)")
    out = b.ok("NOOP")
    assert b"* 2 FETCH (UID 2 FLAGS (\\Answered))" in out


def test_delivery_reported_on_noop(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    deliver(a.ctx, message(4))
    out = b.ok("NOOP")
    assert b"* 4 EXISTS\r\n* 1 RECENT\r\n" in out
    assert b"\\Recent" in b.ok("FETCH 4 FLAGS")


def test_idle_reports_delivery_at_once_and_ends_only_on_done(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    assert b.cmd("IDLE") == b"+ idling\r\n"
    deliver(a.ctx, message(4))  # the hub tells b at once
    assert b.read() == b"* 4 EXISTS\r\n* 1 RECENT\r\n"
    assert b.raw(b"x NOOP\r\n") == b"* BAD Expected DONE\r\n"
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    assert b.read() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted))\r\n* 1 EXPUNGE\r\n"
    assert b.raw(b"DONE\r\n") == b"t3 OK IDLE terminated\r\n"
    assert b"* SEARCH 1 2 3\r\n" in b.ok("SEARCH ALL")


def test_idle_polls_for_other_process_changes(tmp_path: Path) -> None:
    _a, b = two_sessions(tmp_path)
    other = MaildirStore(tmp_path / "mail")  # another process: no shared hub
    assert b.cmd("IDLE") == b"+ idling\r\n"
    box = other.account(USER).open("INBOX")
    box.append(io.BytesIO(message(7)))
    assert b.read() == b""
    b.ctx.reactor.advance(b.ctx.config.imap.idle_poll_interval)  # type: ignore[attr-defined]
    assert b.read() == b"* 4 EXISTS\r\n* 1 RECENT\r\n"
    assert b.raw(b"done\r\n").startswith(b"t3 OK")


def test_idle_keepalive_and_no_timeout(tmp_path: Path) -> None:
    _a, b = two_sessions(tmp_path)
    b.cmd("IDLE")
    b.ctx.reactor.advance(121)  # type: ignore[attr-defined]
    assert b"* OK Still here\r\n" in b.read()
    for _ in range(30):
        b.ctx.reactor.advance(120)  # type: ignore[attr-defined]
    assert not b.closed
    assert b.raw(b"DONE\r\n").endswith(b"t3 OK IDLE terminated\r\n")


def test_idle_in_authenticated_state(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    c = Client(ctx)
    c.login()
    assert c.cmd("IDLE") == b"+ idling\r\n"
    assert c.raw(b"DONE\r\n") == b"t2 OK IDLE terminated\r\n"


def test_connection_lost_during_idle(tmp_path: Path) -> None:
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    a, b = two_sessions(tmp_path)
    b.cmd("IDLE")
    b.proto.connectionLost(Failure(ConnectionLost()))
    deliver(a.ctx, message(5))  # no callback into the dead session
    b.ctx.reactor.advance(600)  # type: ignore[attr-defined]
    assert b.read() == b""
