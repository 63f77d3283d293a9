"""Dovecot and mailsuite take turns on one maildir (Debian: dovecot-imapd).

Dovecot's ``imap`` binary runs in pre-authenticated stdio mode with a minimal
config (``LAYOUT=maildir++``, ``/`` separator, the same tree).  Both sides
must agree on UIDs, UIDVALIDITY, flags, keywords, folders and subscriptions.
Dovecot refuses to run as root, so when the tests run as root the tree is
handed to uid/gid 65534 before each Dovecot turn.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage.store import MaildirStore

IMAP_BIN = Path("/usr/lib/dovecot/imap")
pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/dovecot").exists() or not IMAP_BIN.exists(),
    reason="Dovecot (Debian package dovecot-imapd) is not installed",
)

FETCH = re.compile(r"^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", re.M)


class Dovecot:
    def __init__(self, tmp: Path, maildir: Path) -> None:
        self.tmp = tmp
        self.maildir = maildir
        self.as_root = os.geteuid() == 0
        uid, gid = (65534, 65534) if self.as_root else (os.getuid(), os.getgid())
        self.uid, self.gid = uid, gid
        for d in ("run", "state"):
            (tmp / d).mkdir()
        self.conf = tmp / "dovecot.conf"
        self.conf.write_text(
            f"base_dir = {tmp}/run\nstate_dir = {tmp}/state\nlog_path = /dev/stderr\n"
            f"ssl = no\nmail_location = maildir:{maildir}:LAYOUT=maildir++\n"
            f"mail_uid = {uid}\nmail_gid = {gid}\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n  prefix =\n}\n"
        )

    def run(self, *commands: str, literal: bytes | None = None) -> str:
        if self.as_root:
            for path in [self.tmp, *self.tmp.rglob("*")]:
                os.lchown(path, self.uid, self.gid)
        lines = [f"t{i} {c}\r\n".encode() for i, c in enumerate(commands)]
        script = b"".join(lines)
        if literal is not None:
            script = script.replace(b"{LIT}", b"{%d}\r\n" % len(literal) + literal)
        script += b"tz LOGOUT\r\n"
        env = {"USER": "tester", "HOME": str(self.tmp), "PATH": os.environ.get("PATH", "")}
        proc = subprocess.run(
            [str(IMAP_BIN), "-c", str(self.conf)],
            input=script,
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        out = proc.stdout.decode("utf-8", "replace")
        out += proc.stderr.decode("utf-8", "replace")
        assert "tz OK" in out, out
        for i in range(len(commands)):
            assert re.search(rf"^t{i} OK", out, re.M), out
        return out

    def state(self, folder: str = "INBOX") -> tuple[int, dict[int, frozenset[str]]]:
        out = self.run(f'SELECT "{folder}"', "UID FETCH 1:* (UID FLAGS)")
        validity = int(re.search(r"\[UIDVALIDITY (\d+)\]", out).group(1))  # type: ignore[union-attr]
        flags = {
            int(uid): frozenset(f for f in fl.split() if f != "\\Recent")
            for uid, fl in FETCH.findall(out)
        }
        return validity, flags


def ours(store: MaildirStore, folder: str = "INBOX") -> tuple[int, dict[int, frozenset[str]]]:
    box = store.account("bob@example.org").open(folder)
    box.sync()
    return box.uidvalidity, {m.uid: m.flags for m in box.messages()}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, or (as root) a directory that uid 65534 can reach."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="mailsuite-dovecot-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_dovecot_and_mailsuite_take_turns(workdir: Path) -> None:
    tmp_path = workdir
    store = MaildirStore(tmp_path / "mail")
    acct = store.account("bob@example.org")
    acct.ensure_created()
    dove = Dovecot(tmp_path, acct.root)

    # 1. mailsuite writes first.
    inbox = acct.open("INBOX")
    u1 = inbox.append(io.BytesIO(b"Subject: one\r\n\r\n1\r\n"), ["\\Seen", "$Work"])
    u2 = inbox.append(io.BytesIO(b"Subject: two\r\n\r\n2\r\n"), ["\\Flagged"])
    acct.create_folder("Work/Sub")
    acct.open("Work/Sub").append(io.BytesIO(b"Subject: sub\r\n\r\n"), ["\\Draft"])
    acct.subscribe("Work/Sub", True)
    assert dove.state() == ours(store)
    assert dove.state("Work/Sub") == ours(store, "Work/Sub")
    listing = dove.run('LIST "" "*" RETURN (SUBSCRIBED SPECIAL-USE)')
    assert re.search(r'LIST \([^)]*\\Subscribed[^)]*\) "/" Work/Sub', listing)
    assert re.search(r'LIST \([^)]*\) "/" Sent', listing)

    # 2. Dovecot changes flags, expunges, appends, creates a folder.
    dove.run(
        "SELECT INBOX",
        f"UID STORE {u1} +FLAGS (\\Answered $New)",
        f"UID STORE {u2} +FLAGS (\\Deleted)",
    )
    dove.run("SELECT INBOX", "EXPUNGE")  # own session: Dovecot runs pipelined commands at once
    dove.run(
        "APPEND INBOX (\\Flagged $Dove) {LIT}",
        'CREATE "Dove/Box"',
        'SUBSCRIBE "Dove/Box"',
        literal=b"Subject: from dovecot\r\n\r\nbody\r\n",
    )
    validity, flags = ours(store)
    assert (validity, flags) == dove.state()
    assert flags[u1] == frozenset({"\\Seen", "$Work", "\\Answered", "$New"})
    assert u2 not in flags
    (u3,) = [u for u in flags if u > u2]
    assert flags[u3] == frozenset({"\\Flagged", "$Dove"})
    box = acct.open("INBOX")
    with box.open_message(u3) as f:
        data = f.read()
    assert data == b"Subject: from dovecot\r\n\r\nbody\r\n"
    assert box.messages()[-1].size == len(data)
    infos = {f.name: f for f in acct.folders()}
    assert "Dove/Box" in infos and infos["Dove/Box"].subscribed

    # 3. mailsuite appends, delivers (left in new/ for Dovecot to number), stores.
    u4 = box.append(io.BytesIO(b"Subject: four\r\n\r\n"), ["$Dove"])
    agent = MaildirDeliveryAgent(store)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    d.write(b"Subject: delivered\r\n\r\nhi\r\n")
    d.commit({"bob@example.org": [LocalTarget("bob@example.org")]})
    box.store_flags([u1], ["\\Seen"], "remove")
    dv_validity, dv_flags = dove.state()  # Dovecot numbers the delivered message
    assert dv_validity == validity
    assert dv_flags[u4] == frozenset({"$Dove"})
    assert dv_flags[u1] == frozenset({"$Work", "\\Answered", "$New"})
    assert ours(store) == (dv_validity, dv_flags)
    assert max(dv_flags) > u4

    # 4. Both agree on UIDNEXT-driven numbering afterwards.
    u6 = box.append(io.BytesIO(b"Subject: six\r\n\r\n"))
    assert u6 == max(dv_flags) + 1
    assert dove.state() == ours(store)


def test_dovecot_changes_get_modseqs(workdir: Path) -> None:
    """RFC 7162: Dovecot's flag change, expunge and append (another process
    that ignores our modseq log) all raise mod-sequences mailsuite reports."""
    store = MaildirStore(workdir / "mail")
    acct = store.account("bob@example.org")
    acct.ensure_created()
    dove = Dovecot(workdir, acct.root)
    inbox = acct.open("INBOX")
    u1 = inbox.append(io.BytesIO(b"Subject: one\r\n\r\n1\r\n"), ["\\Seen"])
    u2 = inbox.append(io.BytesIO(b"Subject: two\r\n\r\n2\r\n"))
    inbox.sync()
    before = inbox.highest_modseq()
    watcher = acct.open("INBOX")  # a second session with the same snapshot
    dove.run(
        "SELECT INBOX", f"UID STORE {u1} +FLAGS (\\Flagged)", f"UID STORE {u2} +FLAGS (\\Deleted)"
    )
    dove.run("SELECT INBOX", "EXPUNGE")
    dove.run("APPEND INBOX (\\Draft) {LIT}", literal=b"Subject: three\r\n\r\n3\r\n")
    result = inbox.sync()
    assert result.flags_changed == [u1] and result.expunged == [u2]
    (u3,) = result.added
    assert inbox.modseq(u1) > before and inbox.modseq(u3) > before
    assert inbox.expunged_since(before) == ([u2], True)
    assert inbox.highest_modseq() >= max(inbox.modseq(u1), inbox.modseq(u3))
    watcher.sync()  # sees the same values: each change was logged once
    assert {m.uid: m.modseq for m in watcher.messages()} == {
        m.uid: m.modseq for m in inbox.messages()
    }
