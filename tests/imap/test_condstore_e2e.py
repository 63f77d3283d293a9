"""End to end: CONDSTORE/QRESYNC (RFC 7162) against the real ``twistd
mailsuite`` with IMAPClient and imaplib over implicit TLS; changes come from
a second IMAP session and from another process writing the same Maildir."""

from __future__ import annotations

import imaplib
import io
import re
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import ServerProcess

imapclient = pytest.importorskip("imapclient")
pytestmark = pytest.mark.slow

PASSWORD = "condstore e2e secret"


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(n: int) -> bytes:
    return (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: e2e %d\r\n"
        b"Date: Tue, 1 Jan 2030 10:00:00 +0000\r\n\r\nBody %d\r\n" % (n, n)
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("condstore-e2e"), roles=("imap", "imaps")) as srv:
        yield srv


@pytest.fixture
def user(server: ServerProcess) -> str:
    address = server.new_user("csuser", PASSWORD)
    for i in range(1, 6):
        outside(server, address).append(io.BytesIO(message(i)))
    return address


def outside(server: ServerProcess, address: str) -> Any:
    """INBOX as another process sees it (its own store, no change hub)."""
    from mailsuite.storage.store import MaildirStore

    account = MaildirStore(server.maildir).account(address)
    account.ensure_created()
    box = account.open("INBOX")
    box.sync()
    return box


def client(server: ServerProcess, address: str) -> Any:
    c = imapclient.IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=tls_context(), timeout=30
    )
    c.login(address, PASSWORD)
    return c


def raw_client(server: ServerProcess, address: str) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    m.login(address, PASSWORD)
    return m


def test_imapclient_condstore(server: ServerProcess, user: str) -> None:
    a, b = client(server, user), client(server, user)
    try:
        assert b"CONDSTORE" in a.capabilities() and b"QRESYNC" in a.capabilities()
        assert a.enable("CONDSTORE") == [b"CONDSTORE"]
        selected = a.select_folder("INBOX")
        hms = selected[b"HIGHESTMODSEQ"]
        modseqs = {k: v[b"MODSEQ"][0] for k, v in a.fetch(a.search("ALL"), ["MODSEQ"]).items()}
        assert max(modseqs.values()) == hms
        assert a.folder_status("INBOX", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == hms
        b.select_folder("INBOX")
        b.add_flags([2], [b"$Important"])
        pushed = a.noop()[1]
        assert len(pushed) == 1 and pushed[0][:2] == (2, b"FETCH"), pushed
        items = pushed[0][2]
        assert items[:3] == (b"UID", 2, b"MODSEQ") and items[3][0] > hms
        assert b"$Important" in items[items.index(b"FLAGS") + 1]
        changed = a.fetch(a.search("ALL"), ["FLAGS"], modifiers=[f"CHANGEDSINCE {hms}"])
        assert list(changed) == [2] and b"$Important" in changed[2][b"FLAGS"]
        found = a.search(["MODSEQ", str(hms + 1)])
        assert list(found) == [2] and found.modseq == changed[2][b"MODSEQ"][0]
        # a change by another process is pushed with its modseq as well
        outside(server, user).store_flags([3], ["\\Flagged"], "add")
        since = changed[2][b"MODSEQ"][0]
        later = a.fetch(a.search("ALL"), ["FLAGS"], modifiers=[f"CHANGEDSINCE {since}"])
        assert list(later) == [3] and b"\\Flagged" in later[3][b"FLAGS"]
    finally:
        a.logout()
        b.logout()


def test_imaplib_qresync_after_changes_elsewhere(server: ServerProcess, user: str) -> None:
    m = raw_client(server, user)
    try:
        typ, data = m._simple_command("ENABLE", "QRESYNC")  # type: ignore[attr-defined]
        assert typ == "OK" and m.untagged_responses.pop("ENABLED") == [b"QRESYNC"]
        m.select("INBOX")
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
        hms = int(m.untagged_responses["HIGHESTMODSEQ"][0])
        m.close()
        # another IMAP session expunges 2 and flags 4; another process expunges 5
        other = client(server, user)
        other.select_folder("INBOX")
        other.add_flags([2], [b"\\Deleted"])
        other.expunge()
        other.logout()
        box = outside(server, user)
        box.store_flags([4], ["\\Answered"], "add")
        box.store_flags([5], ["\\Deleted"], "add")
        box.expunge([5])
        typ, data = m._simple_command(  # type: ignore[attr-defined]
            "SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {hms}))"
        )
        assert typ == "OK", data
        m.state = "SELECTED"  # imaplib's select() cannot send parameters
        assert m.untagged_responses.pop("VANISHED") == [b"(EARLIER) 2,5"]
        fetched = m.untagged_responses.pop("FETCH")
        assert len(fetched) == 1
        assert re.match(rb"3 \(UID 4 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", fetched[0])
        new_hms = int(m.untagged_responses["HIGHESTMODSEQ"][-1])
        assert new_hms > hms
        # VANISHED instead of EXPUNGE from now on
        m.store("1", "+FLAGS.SILENT", "(\\Deleted)")
        typ, data = m.expunge()
        assert m.untagged_responses.pop("VANISHED") == [b"1"]
        typ, data = m._simple_command(  # type: ignore[attr-defined]
            "UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {hms} VANISHED)"
        )
        assert typ == "OK"
        assert m.untagged_responses.pop("VANISHED") == [b"(EARLIER) 1:2,5"]
    finally:
        m.logout()


def test_modseq_never_decreases_across_sessions(server: ServerProcess, user: str) -> None:
    sessions = [client(server, user) for _ in range(3)]
    try:
        seen = []
        for i in range(9):
            c = sessions[i % 3]
            c.select_folder("INBOX")
            c.set_flags([i % 5 + 1], [b"\\Seen"] if i % 2 else [b"$Label%d" % i])
            if i % 4 == 3:
                outside(server, user).append(io.BytesIO(message(10 + i)))
            reader = sessions[(i + 1) % 3]
            status = reader.folder_status("INBOX", ["HIGHESTMODSEQ", "MESSAGES"])
            seen.append(status[b"HIGHESTMODSEQ"])
            reader.select_folder("INBOX")
            modseqs = reader.fetch(reader.search("ALL"), ["MODSEQ"])
            assert max(v[b"MODSEQ"][0] for v in modseqs.values()) <= seen[-1]
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
    finally:
        for c in sessions:
            c.logout()
