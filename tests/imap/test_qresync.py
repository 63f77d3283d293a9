"""QRESYNC (RFC 7162 §3.2) over StringTransport sessions on a real Maildir:
resynchronisation after flag changes and expunges made by another session
or another process, VANISHED (EARLIER), VANISHED instead of EXPUNGE, the
HIGHESTMODSEQ rules around delayed expunges, CLOSED."""

from __future__ import annotations

import io
import re
from pathlib import Path

from mailsuite.storage.store import MaildirStore
from tests.imap.support import USER, Client, deliver, message
from tests.imap.test_condstore import highest, modseqs, setup


def uidvalidity(out: bytes) -> int:
    m = re.search(rb"\[UIDVALIDITY (\d+)\]", out)
    assert m, out
    return int(m.group(1))


def fetch_lines(out: bytes) -> list[bytes]:
    return [line for line in out.split(b"\r\n") if b" FETCH (" in line]


def qclient(c: Client) -> Client:
    assert b"* ENABLED QRESYNC\r\n" in c.ok("ENABLE QRESYNC")
    return c


def remember(c: Client) -> tuple[int, int]:
    """Select INBOX with QRESYNC enabled and leave: (UIDVALIDITY, HIGHESTMODSEQ)."""
    out = c.ok("SELECT INBOX")
    state = uidvalidity(out), highest(out)
    c.ok("UNSELECT")
    return state


def test_capabilities_after_login(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 0)
    assert b"CONDSTORE" not in c.greeting and b"QRESYNC" not in c.greeting
    caps = c.ok("CAPABILITY")
    assert b" CONDSTORE" in caps and b" QRESYNC" in caps and b" ENABLE" in caps


def test_resync_after_other_session_changes(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 6, sessions=2)
    qclient(a)
    uv, hms = remember(a)
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Answered)")
    b.ok("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("UID STORE 4 +FLAGS (\\Seen)")
    b.ok("UID STORE 4 -FLAGS (\\Seen)")  # changed and back: still a new modseq
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms}))")
    assert b"* 4 EXISTS\r\n" in out
    assert b"* VANISHED (EARLIER) 3,5\r\n" in out
    lines = fetch_lines(out)
    assert len(lines) == 2
    assert re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", lines[0])
    assert re.match(rb"\* 3 FETCH \(UID 4 FLAGS \(\) MODSEQ \(\d+\)\)", lines[1])
    assert out.index(b"VANISHED") < out.index(b" FETCH (")  # §3.2.6
    new_hms = highest(out)
    assert new_hms > hms and new_hms >= max(modseqs(out).values())
    assert a.tagged(out) == f"t{a.n} OK [READ-WRITE] SELECT completed".encode()
    # nothing changed since: nothing reported
    out = a.ok(f"EXAMINE INBOX (QRESYNC ({uv} {new_hms}))")
    assert out.startswith(b"* OK [CLOSED]")
    assert b"VANISHED" not in out and not fetch_lines(out)


def test_resync_with_known_uids_and_new_mail(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 6, sessions=2)
    qclient(a)
    uv, hms = remember(a)
    b.ok("SELECT INBOX")
    b.ok("STORE 1,6 +FLAGS (\\Flagged)")
    b.ok("STORE 2,5 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    deliver(b.ctx, message(7))  # UID 7: new, the client learns it from EXISTS/UIDNEXT
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:4))")
    assert b"* VANISHED (EARLIER) 2\r\n" in out
    assert [int(m) for m in re.findall(rb"FETCH \(UID (\d+)", out)] == [1]
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms}))")  # default 1:<UIDNEXT-1>
    assert b"* VANISHED (EARLIER) 2,5\r\n" in out
    assert [int(m) for m in re.findall(rb"FETCH \(UID (\d+)", out)] == [1, 6, 7]


def test_uidvalidity_mismatch_reports_nothing(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 3, sessions=2)
    qclient(a)
    uv, hms = remember(a)
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv + 1} {hms} 1:3))")
    assert uidvalidity(out) == uv
    assert b"VANISHED" not in out and not fetch_lines(out)
    assert b"[HIGHESTMODSEQ " in out


def test_uid_fetch_changedsince_vanished(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 8, sessions=2)
    qclient(a)
    a.ok("SELECT INBOX")
    since = highest(a.ok("SELECT INBOX"))
    b.ok("SELECT INBOX")
    b.ok("STORE 4 +FLAGS (\\Seen)")
    b.ok("STORE 1,2,5 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok(f"UID FETCH 2:7 (FLAGS) (CHANGEDSINCE {since} VANISHED)")
    # The session had not seen the other session's changes when the command
    # started: nothing matched; they follow as updates (UID FETCH may report
    # expunges: plain VANISHED, as the client still counts those messages).
    assert re.fullmatch(
        rb"\* VANISHED 1:2,5\r\n\* 2 FETCH \(UID 4 MODSEQ \((\d+)\) FLAGS \(\\Seen\)\)\r\n"
        rb"t\d+ OK \[HIGHESTMODSEQ (\d+)\] FETCH completed\r\n",
        out,
    )
    out = a.ok(f"UID FETCH 2:7 (FLAGS) (CHANGEDSINCE {since} VANISHED)")
    assert re.fullmatch(
        rb"\* VANISHED \(EARLIER\) 2,5\r\n\* 2 FETCH \(UID 4 MODSEQ \(\d+\) FLAGS \(\\Seen\)\)\r\n"
        rb"t\d+ OK FETCH completed\r\n",
        out,
    )
    out = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)")
    assert out.startswith(b"* VANISHED (EARLIER) 1:2,5\r\n")


def test_vanished_replaces_expunge(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 11, sessions=2)
    qclient(a)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)")
    out = a.ok("EXPUNGE")  # §3.2.10.2 example
    assert out.startswith(b"* VANISHED 3:4,7,11\r\n")
    assert a.tagged(out).startswith(f"t{a.n} OK [HIGHESTMODSEQ ".encode())
    assert highest(out) >= max(modseqs(a.ok("FETCH 1:* (MODSEQ)")).values())
    out = b.ok("NOOP")  # the other session, without QRESYNC: EXPUNGE
    assert b"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 5 EXPUNGE\r\n* 8 EXPUNGE\r\n" in out
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok("NOOP")
    assert b"* VANISHED 1\r\n" in out and b"EXPUNGE" not in out
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    out = a.ok("UID EXPUNGE 2")
    assert out.startswith(b"* VANISHED 2\r\n") and b"[HIGHESTMODSEQ " in out
    a.ok("CREATE Trash2")
    out = a.ok("MOVE 1 Trash2")
    assert re.search(rb"\* OK \[COPYUID \d+ 5 1\] Moved\r\n\* VANISHED 5\r\n", out)
    status = a.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert f"HIGHESTMODSEQ {highest(out)})".encode() in status


def test_vanished_never_names_unannounced_messages(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 2, sessions=2)
    qclient(a)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    deliver(b.ctx, message(3))
    b.ok("NOOP")
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok("NOOP")  # UID 3 came and went before a was told: no VANISHED 3
    assert b"VANISHED" not in out
    assert b"* 2 EXISTS" not in out and b"* 3 EXISTS" not in out


def test_highestmodseq_stays_below_delayed_expunge(tmp_path: Path) -> None:
    """§3.2 and the example of §6: while an expunge is held back during
    FETCH/STORE/SEARCH, HIGHESTMODSEQ is sent below its modseq."""
    a, b = setup(tmp_path, 4, sessions=2)
    qclient(a)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    stored = modseqs(out)
    held = highest(out)
    assert b"VANISHED" not in out and b"Expunges pending" in out
    assert held < min(stored.values())  # the expunge came before this store
    box = MaildirStore(tmp_path / "mail").account(USER).open("INBOX")
    box.sync()
    assert held == box.expunged_at([3])[3] - 1
    out = a.ok("SEARCH ALL")
    assert highest(out) == held and b"* SEARCH 1 2 4\r\n" in out
    out = a.ok("NOOP")
    assert out.startswith(b"* VANISHED 3\r\n")
    assert highest(out) == max(stored.values())  # now everything is told
    assert b"Expunges pending" not in a.ok("FETCH 1 (MODSEQ)")


def test_close_expunges_without_highestmodseq(tmp_path: Path) -> None:
    (a,) = setup(tmp_path, 3)
    qclient(a)
    a.ok("SELECT INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    out = a.ok("CLOSE")
    assert out == f"t{a.n} OK CLOSE completed\r\n".encode()  # §3.2.8
    out = a.ok("SELECT INBOX")
    assert b"* 2 EXISTS" in out and b"CLOSED" not in out


def test_enable_qresync_while_selected(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 3, sessions=2)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok("ENABLE QRESYNC")
    assert re.search(rb"\* OK \[HIGHESTMODSEQ \d+\] Highest\r\n\* ENABLED QRESYNC\r\n", out)
    assert b"* VANISHED 2\r\n" in out


def test_resync_after_other_process_changes(tmp_path: Path) -> None:
    """Changes by another process (own store object, no shared hub): the
    modseq log on disk carries them to the QRESYNC select and to IDLE."""
    (a,) = setup(tmp_path, 5)
    qclient(a)
    uv, hms = remember(a)
    other = MaildirStore(tmp_path / "mail").account(USER).open("INBOX")
    other.sync()
    other.store_flags([2], ["$Important"], "add")
    other.store_flags([4, 5], ["\\Deleted"], "add")
    other.expunge([4])
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms}))")
    assert b"* VANISHED (EARLIER) 4\r\n" in out
    assert [int(m) for m in re.findall(rb"FETCH \(UID (\d+)", out)] == [2, 5]
    assert b"$Important" in out
    assert a.cmd("IDLE") == b"+ idling\r\n"
    other.sync()
    other.expunge([5])
    other.store_flags([1], ["\\Flagged"], "add")
    uid = other.append(io.BytesIO(message(9)))
    a.ctx.reactor.advance(a.ctx.config.imap.idle_poll_interval)  # type: ignore[attr-defined]
    out = a.read()
    assert b"* VANISHED 5\r\n" in out
    assert re.search(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\) FLAGS \(\\Flagged\)\)", out)
    assert b"* 4 EXISTS\r\n" in out
    assert a.raw(b"DONE\r\n").startswith(f"t{a.n} OK".encode())
    ms = modseqs(a.ok(f"UID FETCH {uid} (MODSEQ)"))
    assert ms[4] > hms


def test_lost_modseq_log_reports_all_missing_uids_narrowed_by_seq_match(tmp_path: Path) -> None:
    """When the storage no longer remembers expunges that far back, VANISHED
    (EARLIER) lists every UID of the range that does not exist (§3.2.6,
    §5.1); sequence match data (§3.2.5.2) narrows it."""
    a, b = setup(tmp_path, 12, sessions=2)
    qclient(a)
    uv, hms = remember(a)
    b.ok("SELECT INBOX")
    b.ok("STORE 2,5,9 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("LOGOUT")
    folder = MaildirStore(tmp_path / "mail").account_path(USER)
    (folder / "mailsuite.modseq").unlink()  # the expunge log is gone
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:12))")
    assert b"* VANISHED (EARLIER) 2,5,9\r\n" in out
    assert len(fetch_lines(out)) == 9  # every message got a new modseq
    # the client knows: seq 3 = UID 4 (still true), seq 7 = UID 8 (false now)
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:12 (1,3,7 1,4,8)))")
    assert b"* VANISHED (EARLIER) 5,9\r\n" in out
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} 1:12 (1:2 1,3)))")
    assert b"* VANISHED (EARLIER) 5,9\r\n" in out  # seq 2 is UID 3: nothing <= 3


def test_qresync_syntax(tmp_path: Path) -> None:
    (a,) = setup(tmp_path, 2)
    qclient(a)
    for bad in (
        "SELECT INBOX (QRESYNC (0 5))",
        "SELECT INBOX (QRESYNC (1 0))",
        "SELECT INBOX (QRESYNC (1))",
        "SELECT INBOX (QRESYNC (1 5 1:*))",
        "SELECT INBOX (QRESYNC (1 5 1:3 (1:2 1)))",
        "SELECT INBOX (QRESYNC (1 5 1:3 (1:2)))",
        "SELECT INBOX (QRESYNC (1 5 1:3 (1 1) x))",
        "SELECT INBOX (QRESYNC 5)",
        "SELECT INBOX (QRESYNC)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",
        "UID FETCH 1 (FLAGS) (VANISHED)",
    ):
        out = a.cmd(bad)
        assert a.tagged(out).startswith(f"t{a.n} BAD".encode()), (bad, out)
    # both parameters together, in either order
    out = a.ok("SELECT INBOX (QRESYNC (1 5) CONDSTORE)")
    assert b"[HIGHESTMODSEQ " in out
    out = a.ok("SELECT INBOX (CONDSTORE QRESYNC (1 5 1:2 (2 2)))")
    assert out.startswith(b"* OK [CLOSED]")


def test_no_vanished_during_uid_search_with_message_numbers(tmp_path: Path) -> None:
    """§3.2.10.2: VANISHED may answer UID SEARCH, but not one that uses
    message numbers (they would shift under the client)."""
    a, b = setup(tmp_path, 4, sessions=2)
    qclient(a)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.ok("UID SEARCH 1:3")
    assert b"VANISHED" not in out and out.startswith(b"* SEARCH 1 2 3\r\n")
    out = a.ok("UID SEARCH UID 1:*")
    assert out.startswith(b"* SEARCH 1 3 4\r\n* VANISHED 2\r\n")


def test_huge_sets_cost_nothing(tmp_path: Path) -> None:
    """Sets spanning every possible UID are clipped to the mailbox, never expanded."""
    a, b = setup(tmp_path, 3, sessions=2)
    qclient(a)
    uv, hms = remember(a)
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    everything = "1:4294967295"
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} {everything} ({everything} {everything})))")
    assert b"* VANISHED (EARLIER) 2\r\n" in out
    out = a.ok(f"UID FETCH {everything} (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert out.startswith(b"* VANISHED (EARLIER) 2\r\n") and len(fetch_lines(out)) == 2
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} 1 {','.join(['1:4294967295'] * 2000)}))")
    assert b"* VANISHED (EARLIER) 2\r\n" in out


def test_idle_pushes_modseq_and_vanished_from_another_session(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 3, sessions=2)
    qclient(a)
    hms = highest(a.ok("SELECT INBOX"))
    b.ok("SELECT INBOX")
    assert a.cmd("IDLE") == b"+ idling\r\n"
    b.ok("STORE 1 +FLAGS (\\Answered)")
    m = re.fullmatch(rb"\* 1 FETCH \(UID 1 MODSEQ \((\d+)\) FLAGS \(\\Answered\)\)\r\n", a.read())
    assert m and int(m.group(1)) > hms
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    assert re.fullmatch(
        rb"\* 2 FETCH \(UID 2 MODSEQ \(\d+\) FLAGS \(\\Deleted\)\)\r\n\* VANISHED 2\r\n", a.read()
    )
    out = a.raw(b"DONE\r\n")
    assert out == f"t{a.n} OK IDLE terminated\r\n".encode()
    assert highest(a.ok("SELECT INBOX")) > int(m.group(1))


def test_uid_fetch_of_held_expunges_is_ok_and_reports_them(tmp_path: Path) -> None:
    """A UID FETCH may be answered with VANISHED: messages whose expunge is
    still held back are left out and reported at its end, with OK."""
    a, b = setup(tmp_path, 3, sessions=2)
    qclient(a)
    since = highest(a.ok("SELECT INBOX"))
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.cmd("FETCH 1:* (FLAGS)")  # the expunge is held back
    assert b"VANISHED" not in out
    out = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)")
    assert b"FETCH (UID 2 " not in out
    assert re.search(rb"\* VANISHED 2\r\nt\d+ OK \[HIGHESTMODSEQ \d+\] FETCH completed", out)
