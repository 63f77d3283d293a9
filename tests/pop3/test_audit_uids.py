"""Acceptance audit: UIDs and UIDLs are never reused (issues 3 and 7).

On the real server: messages are fetched and deleted with POP3, the caches
beside the folder are deleted and the server restarts; a new message must
get a UID above every UID ever used and a UIDL no earlier message had, and
UIDVALIDITY must not change.
"""

from __future__ import annotations

import imaplib
import poplib
import re
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

USER = "uids@example.test"
PASSWORD = "uids-Secret-1"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}


def deliver(srv: ServerProcess, n: int) -> None:
    code, _ = srv.admin("deliver", USER, stdin=f"Subject: m{n}\n\nbody {n}\n")
    assert code == 0


def uidls(srv: ServerProcess) -> dict[int, bytes]:
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    try:
        p.user(USER)
        p.pass_(PASSWORD)
        _, lines, _ = p.uidl()
        return {int(n): uid for n, uid in (line.split() for line in lines)}
    finally:
        p.quit()


def imap_state(srv: ServerProcess) -> tuple[int, list[int]]:
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    try:
        m.login(USER, PASSWORD)
        typ, data = m.status("INBOX", "(UIDVALIDITY)")
        assert typ == "OK"
        match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert match
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", "ALL")
        assert typ == "OK"
        return int(match.group(1)), [int(u) for u in (data[0] or b"").split()]
    finally:
        m.logout()


def delete_all_with_pop3(srv: ServerProcess) -> None:
    p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    for n in range(1, count + 1):
        p.retr(n)
        p.dele(n)
    p.quit()


def drop_caches(root: Path) -> None:
    for name in ("mailsuite.index", "mailsuite.cache"):
        for f in root.rglob(name):
            f.unlink()


def test_uids_and_uidls_never_reused_across_deletes_restarts_and_lost_caches(
    tmp_path: Path,
) -> None:
    srv = ServerProcess(
        tmp_path,
        roles=("pop3", "imap"),
        extra_config={"auth": {**FAST_HASH, "allow_plaintext": True}},
    ).start()
    try:
        srv.add_user(USER, PASSWORD)
        for n in range(3):
            deliver(srv, n)
        validity, first_uids = imap_state(srv)
        first_uidls = set(uidls(srv).values())
        assert first_uids == [1, 2, 3] and len(first_uidls) == 3
        # the highest UIDs are the ones a careless implementation reuses
        delete_all_with_pop3(srv)
        assert imap_state(srv) == (validity, [])
        srv.stop()
        drop_caches(srv.maildir)
        srv.start()
        deliver(srv, 3)
        validity_after, uids = imap_state(srv)
        new_uidls = set(uidls(srv).values())
    finally:
        srv.stop()
    assert validity_after == validity
    assert uids == [4]
    assert len(new_uidls) == 1 and not new_uidls & first_uidls
