"""End to end: the real ``twistd mailsuite`` on loopback ports, driven by
imaplib and IMAPClient over STARTTLS and implicit TLS.

Deliveries from "another process" go through the real store of this test
process while the server runs; IDLE must report them within the poll
interval.
"""

from __future__ import annotations

import imaplib
import io
import shutil
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerProcess

imapclient = pytest.importorskip("imapclient")
pytestmark = pytest.mark.slow

PASSWORD = "imap e2e secret"
MSG = (
    b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello e2e\r\n"
    b"Date: Tue, 1 Jan 2030 10:00:00 +0000\r\nMessage-ID: <e2e@example.test>\r\n\r\n"
    b"Hello there.\r\n"
)


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(
        tmp_path_factory.mktemp("imape2e"),
        roles=("imap", "imaps", "smtp"),
        extra_config={"imap": {"idle_poll_interval": 0.3}},
    ) as srv:
        yield srv


@pytest.fixture
def user(server: ServerProcess) -> str:
    return server.new_user("imapuser", PASSWORD)


def deliver_from_outside(server: ServerProcess, address: str, data: bytes = MSG) -> int:
    from mailsuite.storage.store import MaildirStore

    account = MaildirStore(server.maildir).account(address)
    account.ensure_created()
    return int(account.open("INBOX").append(io.BytesIO(data)))


def test_imaplib_starttls(server: ServerProcess, user: str) -> None:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    try:
        assert "LOGINDISABLED" in m.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            m.login(user, PASSWORD)
        m.starttls(tls_context())
        assert "LOGINDISABLED" not in m.capabilities
        m.login(user, PASSWORD)
        typ, data = m.append("INBOX", None, None, MSG)
        assert typ == "OK" and b"APPENDUID" in data[0]
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)")
        assert typ == "OK"
        assert data[0][1] == b"Subject: hello e2e\r\n\r\n"  # type: ignore[index]
        typ, data = m.search(None, "SUBJECT", '"hello e2e"')
        assert data == [b"1"]
        typ, data = m.fetch("1", "(BODY[TEXT])")
        assert data[0][1] == b"Hello there.\r\n"  # type: ignore[index]
        typ, data = m.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]  # type: ignore[operator]
        m.store("1", "+FLAGS", "\\Deleted")
        typ, data = m.expunge()
        assert data == [b"1"]
        m.close()
    finally:
        m.logout()


def test_imaplib_implicit_tls(server: ServerProcess, user: str) -> None:
    deliver_from_outside(server, user)
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    try:
        assert "STARTTLS" not in m.capabilities
        m.login(user, PASSWORD)
        typ, folders = m.list()
        assert typ == "OK" and any(b"\\Sent" in f for f in folders)  # type: ignore[operator]
        typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
        assert b"MESSAGES 1 UNSEEN 1" in data[0]  # type: ignore[operator]
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(BODY[])")
        assert data[0][1] == MSG  # type: ignore[index]
        typ, data = m.fetch("1", "(FLAGS)")
        assert b"\\Seen" not in data[0]  # type: ignore[operator]  # EXAMINE is read-only
    finally:
        m.logout()


def test_imapclient_implicit_tls_idle_and_move(server: ServerProcess, user: str) -> None:
    c = imapclient.IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=tls_context(), timeout=30
    )
    try:
        c.login(user, PASSWORD)
        caps = c.capabilities()
        for cap in (b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE", b"NAMESPACE", b"ID"):
            assert cap in caps
        assert b"mailsuite" in c.id_({"name": "e2e"})[0]
        special = {flags[-1] for flags, _d, _n in c.list_folders() if len(flags) > 1}
        assert b"\\Trash" in special
        c.select_folder("INBOX")
        c.idle()
        deliver_from_outside(server, user)  # another process
        responses = c.idle_check(timeout=10)
        c.idle_done()
        assert (1, b"EXISTS") in responses
        uids = c.search(["ALL"])
        assert len(uids) == 1
        msgs = c.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "INTERNALDATE", "RFC822.SIZE"])
        env = msgs[uids[0]][b"ENVELOPE"]
        assert env.subject == b"hello e2e"
        c.move(uids, "Archive")
        assert c.search(["ALL"]) == []
        c.select_folder("Archive")
        assert len(c.search(["ALL"])) == 1
    finally:
        c.logout()


def test_imapclient_starttls_two_sessions(server: ServerProcess, user: str) -> None:
    for _ in range(3):
        deliver_from_outside(server, user)
    clients = []
    for _ in range(2):
        c = imapclient.IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
        c.starttls(tls_context())
        c.login(user, PASSWORD)
        c.select_folder("INBOX")
        clients.append(c)
    a, b = clients
    try:
        uids = a.search(["ALL"])
        a.delete_messages(uids[:1])
        a.expunge()
        b.use_uid = False
        data = b.fetch([3], ["UID"])  # b has not been told yet: seq 3 is still uid 3
        assert data[3][b"UID"] == uids[2]
        b.use_uid = True
        b.noop()
        assert b.search(["ALL"]) == uids[1:]
    finally:
        for c in clients:
            c.logout()


def test_idle_reports_delivery_quickly(server: ServerProcess, user: str) -> None:
    c = imapclient.IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=tls_context(), timeout=30
    )
    try:
        c.login(user, PASSWORD)
        c.select_folder("INBOX")
        c.idle()
        started = time.monotonic()
        deliver_from_outside(server, user)
        responses = c.idle_check(timeout=10)
        elapsed = time.monotonic() - started
        c.idle_done()
        assert (1, b"EXISTS") in responses
        print(f"IDLE saw another process's delivery after {elapsed:.2f} s")
    finally:
        c.logout()


def test_idle_reports_smtp_delivery_within_a_second(server: ServerProcess, user: str) -> None:
    c = imapclient.IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=tls_context(), timeout=30
    )
    try:
        c.login(user, PASSWORD)
        c.select_folder("INBOX")
        c.idle()
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as smtp:
            smtp.sendmail("sender@elsewhere.test", [user], MSG)
        responses = c.idle_check(timeout=10)
        elapsed = time.monotonic() - started
        c.idle_done()
        assert (1, b"EXISTS") in responses
        print(f"IDLE saw the SMTP delivery after {elapsed:.2f} s")
    finally:
        c.logout()


def test_mbsync(server: ServerProcess, user: str, tmp_path: Path) -> None:
    mbsync = shutil.which("mbsync")
    if mbsync is None:
        pytest.skip("mbsync (Debian isync) not installed")
    deliver_from_outside(server, user)
    local = tmp_path / "local"
    local.mkdir()
    cert = server.data_dir / "tls" / "selfsigned.crt"
    conf = tmp_path / "mbsyncrc"
    conf.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {server.ports["imaps"]}
User {user}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )
    run = [mbsync, "-c", str(conf), "-a"]
    result = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    got = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(got) == 1
    body = got[0].read_bytes()  # mbsync stores LF line ends and adds X-TUID
    assert b"Subject: hello e2e\n" in body and body.endswith(b"\n\nHello there.\n")
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()
    # push a local message up (APPEND with flags and date) and sync again
    (local / "Sent" / "cur" / "1.local:2,S").write_bytes(MSG.replace(b"hello", b"sent"))
    result = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    try:
        m.login(user, PASSWORD)
        m.select("Sent")
        _typ, data = m.search(None, "SUBJECT", "sent")
        assert data == [b"1"]
    finally:
        m.logout()


def test_large_fetch_over_tls(server: ServerProcess, user: str) -> None:
    """Several MB in one FETCH: written in batches, paused and resumed by the
    TLS transport while the client reads; every byte arrives."""
    bodies = []
    for i in range(24):
        body = b"".join(b"%d line %06d with some padding text\r\n" % (i, j) for j in range(6000))
        bodies.append(b"Subject: big %d\r\n\r\n" % i + body)
        deliver_from_outside(server, user, bodies[-1])
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    try:
        m.login(user, PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        got = [item[1] for item in data if isinstance(item, tuple)]
        assert got == bodies
    finally:
        m.logout()
