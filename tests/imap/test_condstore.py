"""CONDSTORE (RFC 7162 §3.1) over StringTransport sessions on a real Maildir:
the RFC's examples, implicit enabling, MODIFIED, SEARCH MODSEQ, STATUS,
unsolicited FETCH with MODSEQ, and mod-sequences that never go down."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mailsuite.storage.store import MaildirStore
from tests.imap.support import (
    USER,
    Client,
    add_user,
    claim_recent,
    deliver,
    make_context,
    message,
)


def setup(tmp_path: Path, n: int = 5, sessions: int = 1) -> list[Client]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    ctx = make_context(tmp_path)
    add_user(ctx)
    for i in range(1, n + 1):
        deliver(ctx, message(i))
    claim_recent(ctx)  # no \\Recent in the answers below
    clients = []
    for _ in range(sessions):
        c = Client(ctx)
        c.login()
        clients.append(c)
    return clients


def modseqs(out: bytes) -> dict[int, int]:
    """seq -> MODSEQ of the FETCH responses in ``out``."""
    return {
        int(m.group(1)): int(m.group(2))
        for m in re.finditer(rb"\* (\d+) FETCH \([^\r\n]*?MODSEQ \((\d+)\)", out)
    }


def highest(out: bytes) -> int:
    m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", out)
    assert m, out
    return int(m.group(1))


def test_enable_condstore_and_qresync(tmp_path: Path) -> None:
    (c,) = setup(tmp_path)
    assert b"* ENABLED CONDSTORE\r\n" in c.ok("ENABLE CONDSTORE")
    assert b"* ENABLED\r\n" in c.ok("ENABLE CONDSTORE")  # already on: not listed again
    out = c.ok("ENABLE QRESYNC CONDSTORE X-UNKNOWN")
    assert b"* ENABLED QRESYNC\r\n" in out  # CONDSTORE was on already
    (d,) = setup(tmp_path / "d", 0)
    assert b"* ENABLED QRESYNC CONDSTORE\r\n" in d.ok("ENABLE qresync CONDSTORE qresync")
    (e,) = setup(tmp_path / "e", 0)
    assert b"* ENABLED QRESYNC\r\n" in e.ok("ENABLE QRESYNC")
    assert b"* ENABLED\r\n" in e.ok("ENABLE CONDSTORE")
    assert c.proto.enabled >= {"CONDSTORE", "QRESYNC"}


def test_select_condstore_example_18(tmp_path: Path) -> None:
    (c,) = setup(tmp_path)
    out = c.ok("SELECT INBOX")
    assert b"HIGHESTMODSEQ" not in out  # not enabled yet
    out = c.ok("SELECT INBOX (CONDSTORE)")
    assert out.startswith(b"* OK [CLOSED]")
    h = highest(out)
    all_seqs = modseqs(c.ok("FETCH 1:* (MODSEQ)"))
    assert h == max(all_seqs.values())
    # from now on every SELECT/EXAMINE reports it
    out = c.ok("EXAMINE INBOX")
    assert highest(out) == h and c.tagged(out).startswith(b"t5 OK [READ-ONLY]")


def test_fetch_modseq_example_13_and_first_enabling_reports_highest(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 3)
    c.ok("SELECT INBOX")
    out = c.ok("FETCH 1:3 (MODSEQ)")
    assert out.startswith(b"* OK [HIGHESTMODSEQ ")  # first enabling command, selected
    ms = modseqs(out)
    assert sorted(ms) == [1, 2, 3] and all(v > 0 for v in ms.values())
    assert re.search(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)\r\n", out)
    assert highest(out) == max(ms.values())
    out = c.ok("FETCH 1 (MODSEQ)")
    assert b"HIGHESTMODSEQ" not in out  # only the first time


def test_changedsince_example_12(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 8)
    c.ok("SELECT INBOX")
    base = highest(c.ok("ENABLE CONDSTORE"))
    c.ok("STORE 4 +FLAGS (\\Seen)")
    c.ok("STORE 6 +FLAGS (\\Deleted)")
    c.ok("STORE 8 +FLAGS ($NoJunk $MDNSent)")
    out = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base})")
    lines = [line for line in out.split(b"\r\n") if b"FETCH (" in line]
    assert len(lines) == 3
    assert re.match(rb"\* 4 FETCH \(UID 4 MODSEQ \(\d+\) FLAGS \(\\Seen\)\)", lines[0])
    assert re.match(rb"\* 6 FETCH \(UID 6 MODSEQ \(\d+\) FLAGS \(\\Deleted\)\)", lines[1])
    assert re.match(rb"\* 8 FETCH \(UID 8 MODSEQ \(\d+\) FLAGS \(\$MDNSent \$NoJunk\)\)", lines[2])
    # CHANGEDSINCE implicitly adds MODSEQ and enables CONDSTORE
    (d,) = setup(tmp_path / "d", 2)
    d.ok("SELECT INBOX")
    out = d.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    assert out.startswith(b"* OK [HIGHESTMODSEQ ") and len(modseqs(out)) == 2


def test_store_unchangedsince_examples_3_and_4(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 8)
    c.ok("SELECT INBOX")
    out = c.ok("UID STORE 6,4,8 (UNCHANGEDSINCE 9223372036854775807) +FLAGS.SILENT (\\Deleted)")
    assert out.startswith(b"* OK [HIGHESTMODSEQ ")  # Example 5: first enabling command
    lines = re.findall(rb"\* (\d+) FETCH \(UID (\d+) MODSEQ \((\d+)\)\)\r\n", out)
    assert [(int(a), int(b)) for a, b, _ in lines] == [(4, 4), (6, 6), (8, 8)]
    assert len({m for _, _, m in lines}) == 1  # one store, one new modseq
    assert c.tagged(out) == b"t3 OK STORE completed"
    out = c.ok("STORE * (UNCHANGEDSINCE 9223372036854775807) +FLAGS.SILENT (\\Deleted $Processed)")
    assert re.search(rb"\* 8 FETCH \(UID 8 MODSEQ \(\d+\)\)\r\n", out)
    assert b"FLAGS" not in out


def test_store_modified_example_10_and_unchangedsince_0(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 9, sessions=2)
    a.ok("SELECT INBOX (CONDSTORE)")
    b.ok("SELECT INBOX")
    before = modseqs(a.ok("FETCH 5,7,9 (MODSEQ)"))
    since = max(before.values())
    b.ok("STORE 7 +FLAGS (\\Seen \\Deleted)")
    b.ok("STORE 9 +FLAGS (\\Deleted)")
    out = a.cmd(f"STORE 7,5,9 (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Deleted)")
    assert a.tagged(out) == b"t4 OK [MODIFIED 7,9] Conditional STORE failed"
    assert re.search(rb"\* 5 FETCH \(UID 5 MODSEQ \(\d+\)\)\r\n", out)
    # the failed ones are sent unsolicited with their current flags (example 10)
    assert re.search(rb"\* 7 FETCH \(UID 7 MODSEQ \(\d+\) FLAGS \(\\Deleted \\Seen\)\)", out)
    assert re.search(rb"\* 9 FETCH \(UID 9 MODSEQ \(\d+\) FLAGS \(\\Deleted\)\)", out)
    # example 7: UNCHANGEDSINCE 0 always fails
    out = a.cmd("STORE 2 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert a.tagged(out) == b"t5 OK [MODIFIED 2] Conditional STORE failed"
    assert b"$MDNSent" not in a.ok("FETCH 2 FLAGS")
    out = a.cmd("UID STORE 2:3 (UNCHANGEDSINCE 0) FLAGS.SILENT ()")
    assert a.tagged(out) == b"t7 OK [MODIFIED 2:3] Conditional STORE failed"


def test_no_spurious_modified_for_untouched_flags(tmp_path: Path) -> None:
    """§3.1.12: another session changed \\Deleted; +FLAGS ($Processed) still works."""
    a, b = setup(tmp_path, 3, sessions=2)
    a.ok("SELECT INBOX (CONDSTORE)")
    b.ok("SELECT INBOX")
    since = modseqs(a.ok("FETCH 2 (MODSEQ)"))[2]
    b.ok("STORE 2 +FLAGS (\\Deleted \\Answered)")
    out = a.ok(f"STORE 2 (UNCHANGEDSINCE {since}) +FLAGS.SILENT ($Processed)")
    assert b"MODIFIED" not in out
    assert b"$Processed" in a.ok("FETCH 2 FLAGS")
    # but a change to the very flag the client touches fails the test
    since = modseqs(a.ok("FETCH 3 (MODSEQ)"))[3]
    b.ok("STORE 3 +FLAGS ($Processed)")
    out = a.cmd(f"STORE 3 (UNCHANGEDSINCE {since}) -FLAGS.SILENT ($Processed)")
    assert b"[MODIFIED 3]" in out
    # a change the client was told about (NOOP) fails even for untouched flags' sake
    since = modseqs(a.ok("FETCH 3 (MODSEQ)"))[3]
    b.ok("STORE 3 +FLAGS (\\Seen)")
    a.ok("NOOP")
    out = a.cmd(f"STORE 3 (UNCHANGEDSINCE {since}) -FLAGS.SILENT (\\Seen)")
    assert b"[MODIFIED 3]" in out and b"\\Seen" in a.ok("FETCH 3 FLAGS")
    assert b"[MODIFIED 1:3]" in a.cmd("STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Draft)")
    # FLAGS (replace) is never retried
    since = modseqs(a.ok("FETCH 1 (MODSEQ)"))[1]
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    assert b"[MODIFIED 1]" in a.cmd(f"STORE 1 (UNCHANGEDSINCE {since}) FLAGS.SILENT (\\Seen)")


def test_store_modified_and_expunged_example_11(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 4, sessions=2)
    a.ok("SELECT INBOX (CONDSTORE)")
    b.ok("SELECT INBOX")
    since = max(modseqs(a.ok("FETCH 1:* (MODSEQ)")).values())
    b.ok("STORE 2 +FLAGS (\\Seen)")
    b.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    out = a.cmd(f"STORE 1:3 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)")
    assert a.tagged(out) == b"t4 OK [MODIFIED 2] Conditional STORE failed"
    c, d = setup(tmp_path / "other", 4, sessions=2)
    c.ok("SELECT INBOX (CONDSTORE)")
    d.ok("SELECT INBOX")
    since = max(modseqs(c.ok("FETCH 1:* (MODSEQ)")).values())
    d.ok("STORE 2 +FLAGS (\\Seen)")
    d.ok("STORE 3:4 +FLAGS.SILENT (\\Deleted)")
    d.ok("EXPUNGE")
    out = c.cmd(f"STORE 1:4 (UNCHANGEDSINCE {since}) +FLAGS (\\Seen)")
    assert re.search(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\) FLAGS \(\\Seen\)\)", out)
    assert c.tagged(out) == b"t4 NO [MODIFIED 2] Some messages were expunged"
    assert b"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n" in c.ok("NOOP")


def test_store_fetch_responses_carry_uid_and_modseq_once_enabled(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 2)
    c.ok("SELECT INBOX")
    out = c.ok("STORE 1 +FLAGS (\\Flagged)")
    assert b"* 1 FETCH (FLAGS (\\Flagged))\r\n" in out  # plain RFC 3501
    c.ok("ENABLE CONDSTORE")
    out = c.ok("STORE 1 -FLAGS (\\Flagged)")
    assert re.search(rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\) FLAGS \(\)\)", out)
    out = c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert re.search(rb"\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)\r\n", out)
    assert c.ok("STORE 2 +FLAGS.SILENT (\\Seen)") == b"t7 OK STORE completed\r\n"  # no change


def test_fetch_setting_seen_reports_uid_modseq_flags(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 2)
    c.ok("SELECT INBOX (CONDSTORE)")
    before = modseqs(c.ok("FETCH 1 (MODSEQ)"))[1]
    out = c.ok("FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
    m = re.search(
        rb"\* 1 FETCH \(UID 1 BODY\[.*?\r\n\r\n MODSEQ \((\d+)\) FLAGS \(\\Seen\)\)", out, re.S
    )
    assert m, out
    assert int(m.group(1)) > before
    assert modseqs(c.ok("FETCH 1 (MODSEQ)"))[1] == int(m.group(1))


def test_search_modseq_examples_15_16(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 6)
    c.ok("SELECT INBOX")
    c.ok("STORE 2,5 +FLAGS (\\Draft)")
    ms = modseqs(c.ok("FETCH 1:* (MODSEQ)"))
    since = ms[2]
    out = c.ok(f'SEARCH MODSEQ "/flags/\\\\draft" all {since}')
    assert f"* SEARCH 2 5 (MODSEQ {max(ms[2], ms[5])})\r\n".encode() in out
    out = c.ok(f"UID SEARCH MODSEQ {since}")
    assert f"* SEARCH 2 5 (MODSEQ {ms[5]})\r\n".encode() in out
    out = c.ok(f"SEARCH OR NOT MODSEQ {ms[1]} LARGER 50000")
    assert b"* SEARCH\r\n" in out  # example 16: nothing found, no MODSEQ
    assert b"BAD" in c.cmd('SEARCH MODSEQ "/flags/\\\\draft" sometimes 5')
    assert b"BAD" in c.cmd("SEARCH MODSEQ 9223372036854775808")


def test_search_modseq_enables_and_esearch_example_19(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 5)
    c.ok("SELECT INBOX")
    out = c.ok("SEARCH MODSEQ 0")
    assert out.startswith(b"* OK [HIGHESTMODSEQ ")
    h = highest(out)
    assert f"* SEARCH 1 2 3 4 5 (MODSEQ {h})\r\n".encode() in out
    out = c.ok("SEARCH RETURN (ALL) MODSEQ 1")
    assert f'* ESEARCH (TAG "t4") ALL 1:5 MODSEQ {h}\r\n'.encode() in out


def test_status_highestmodseq_example_17(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 3)
    out = c.ok("STATUS INBOX (UIDNEXT MESSAGES HIGHESTMODSEQ)")
    m = re.search(rb'\* STATUS "INBOX" \(UIDNEXT 4 MESSAGES 3 HIGHESTMODSEQ (\d+)\)', out)
    assert m, out
    assert "CONDSTORE" in c.proto.enabled  # an enabling command
    assert highest(c.ok("SELECT INBOX")) == int(m.group(1))


def test_other_session_flag_change_example_14(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 7, sessions=2)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX (CONDSTORE)")
    out = a.ok("STORE 7 +FLAGS.SILENT (\\Deleted)")
    out = b.ok("NOOP")
    m = re.search(rb"\* 7 FETCH \(UID 7 MODSEQ \((\d+)\) FLAGS \(\\Deleted\)\)", out)
    assert m, out
    assert modseqs(b.ok("FETCH 7 (MODSEQ)"))[7] == int(m.group(1))
    # a flag set and cleared again still changes the modseq: reported with MODSEQ
    a.ok("STORE 7 +FLAGS.SILENT (\\Seen)")
    a.ok("STORE 7 -FLAGS.SILENT (\\Seen)")
    out = b.ok("NOOP")
    m2 = re.search(rb"\* 7 FETCH \(UID 7 MODSEQ \((\d+)\) FLAGS \(\\Deleted\)\)", out)
    assert m2 and int(m2.group(1)) > int(m.group(1))


def test_other_process_flag_change_reported_with_modseq(tmp_path: Path) -> None:
    (b,) = setup(tmp_path, 3)
    b.ok("SELECT INBOX (CONDSTORE)")
    h = highest(b.ok("SELECT INBOX (CONDSTORE)"))
    other = MaildirStore(tmp_path / "mail").account(USER).open("INBOX")  # no shared hub
    other.sync()
    other.store_flags([2], ["\\Flagged"], "add")
    out = b.ok("NOOP")
    m = re.search(rb"\* 2 FETCH \(UID 2 MODSEQ \((\d+)\) FLAGS \(\\Flagged\)\)", out)
    assert m and int(m.group(1)) > h, out


def test_modseq_never_decreases_across_sessions(tmp_path: Path) -> None:
    a, b = setup(tmp_path, 4, sessions=2)
    a.ok("SELECT INBOX (CONDSTORE)")
    b.ok("SELECT INBOX (CONDSTORE)")
    seen = [highest(a.ok("SELECT INBOX (CONDSTORE)"))]
    for i in range(6):
        writer, reader = (a, b) if i % 2 else (b, a)
        flag = "\\Seen" if i % 3 else "\\Flagged"
        writer.ok(f"STORE {i % 4 + 1} {'+' if i % 2 else '-'}FLAGS.SILENT ({flag})")
        deliver(a.ctx, message(10 + i))
        reader.ok("NOOP")
        out = reader.ok("STATUS INBOX (HIGHESTMODSEQ)")
        seen.append(int(re.search(rb"HIGHESTMODSEQ (\d+)\)", out).group(1)))  # type: ignore[union-attr]
        reselect = highest(reader.ok("SELECT INBOX (CONDSTORE)"))
        assert reselect == seen[-1]
        new = modseqs(reader.ok("FETCH 1:* (MODSEQ)"))
        assert max(new.values()) == reselect
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    # a new message always gets a modseq above the mailbox's highest
    box = MaildirStore(tmp_path / "mail").account(USER).open("INBOX")
    box.sync()
    top = box.highest_modseq()
    uid = box.append(io.BytesIO(message(99)))
    box.sync()
    assert box.modseq(uid) > top


@pytest.mark.parametrize(
    "command",
    [
        "FETCH 1 (FLAGS) (CHANGEDSINCE)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE x)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 5 CHANGEDSINCE 6)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",
        "UID FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)",  # QRESYNC not enabled
        "FETCH 1 (FLAGS) (FOO 1)",
        "FETCH 1 (FLAGS) ()",
        "STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
        "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
        "STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)",
        "STORE 1 (FOO 1) +FLAGS (\\Seen)",
        "SEARCH MODSEQ",
        "SEARCH MODSEQ x",
        "SELECT INBOX (QRESYNC (1 1))",  # QRESYNC not enabled
        "SELECT INBOX (FOO)",
        "SELECT INBOX ()",
        "SELECT INBOX (CONDSTORE CONDSTORE)",
        "STATUS INBOX (HIGHESTMODSEQ FOO)",
        "FETCH 2 (MODSEQ)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 1) extra",
    ],
)
def test_bad_syntax(tmp_path: Path, command: str) -> None:
    (c,) = setup(tmp_path, 1)
    c.ok("SELECT INBOX")
    out = c.cmd(command)
    assert c.tagged(out).startswith(b"t3 BAD"), out
    assert b"Traceback" not in out
    assert "CONDSTORE" not in c.proto.enabled  # a rejected command enables nothing
    assert c.proto.state.name == "SELECTED"  # and a bad SELECT keeps the mailbox


def test_closed_response_code_on_reselect(tmp_path: Path) -> None:
    (c,) = setup(tmp_path, 1)
    assert b"CLOSED" not in c.ok("SELECT INBOX")
    c.ok("CREATE other")
    out = c.ok("EXAMINE other")
    assert out.startswith(b"* OK [CLOSED] ")
    assert b"CLOSED" not in c.ok("CLOSE")
    assert b"CLOSED" not in c.ok("SELECT INBOX")
    assert b"CLOSED" not in c.ok("UNSELECT")
