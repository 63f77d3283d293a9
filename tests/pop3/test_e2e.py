"""End to end: the real ``twistd mailsuite`` on loopback ports, driven by poplib
(and imaplib for the mixed IMAP/POP3 case).

Messages are put into the Maildir by this test process through the real
store while the server runs (the "admin delivers meanwhile" case).
"""

from __future__ import annotations

import hashlib
import imaplib
import io
import poplib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytest.importorskip("mailsuite.storage.store")
pytestmark = pytest.mark.slow

PASSWORD = "pop3 e2e secret"
KiB = 1024
MiB = 1024 * KiB


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(
        tmp_path_factory.mktemp("pop3e2e"), roles=("pop3", "pop3s", "imap", "imaps")
    ) as srv:
        yield srv


@pytest.fixture
def user(server: ServerProcess) -> str:
    """A fresh account per test (tests stay independent on one server)."""
    return server.new_user("user", PASSWORD)


def deliver(server: ServerProcess, address: str, data: bytes) -> int:
    from mailsuite.storage.store import MaildirStore

    account = MaildirStore(server.maildir).account(address)
    account.ensure_created()
    return account.open("INBOX").append(io.BytesIO(data))


def inbox_uids(server: ServerProcess, address: str) -> list[int]:
    from mailsuite.storage.store import MaildirStore

    box = MaildirStore(server.maildir).account(address).open("INBOX")
    box.sync()
    return [m.uid for m in box.messages()]


def pop3s(server: ServerProcess, address: str) -> poplib.POP3_SSL:
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=30)
    p.user(address)
    p.pass_(PASSWORD)
    return p


def retr_bytes(p: poplib.POP3, n: int) -> bytes:
    _resp, lines, _octets = p.retr(n)
    return b"".join(line + b"\r\n" for line in lines)  # poplib has removed the stuffing


def rss(server: ServerProcess) -> int:
    """The server process's resident set size in bytes (Linux /proc)."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KiB
    pytest.skip("no /proc/<pid>/status")


class RssSampler(threading.Thread):
    """Samples the server's RSS until stopped; ``peak`` is the largest seen."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = rss(server)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, rss(self.server))


def simple(n: int, body: bytes = b"") -> bytes:
    return b"Subject: e2e %d\r\n\r\n" % n + (body or b"hello %d\r\n" % n)


# ---------------------------------------------------------------------------
def test_stls_then_login_and_plaintext_refused_before(server: ServerProcess, user: str) -> None:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto):
        p.user(user)
    p.stls(tls_context())
    caps = p.capa()
    assert "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"] and "STLS" not in caps
    p.user(user)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert p.stat() == (0, 0)
    p.quit()


def test_stls_plaintext_injection_is_discarded(server: ServerProcess, user: str) -> None:
    """RFC 2595 §4 / DESIGN.md §2: commands sent with STLS in one packet never run."""
    raw = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"+OK")
    raw.sendall(b"STLS\r\nUSER " + user.encode() + b"\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert f.readline() == b"+OK Begin TLS negotiation now\r\n"
    s = tls_context().wrap_socket(raw)
    s.sendall(b"STAT\r\n")
    sf = s.makefile("rb")
    assert sf.readline().startswith(b"-ERR")  # still not logged in: USER/PASS were dropped
    s.sendall(b"QUIT\r\n")
    assert sf.readline().startswith(b"+OK")
    s.close()


def test_dot_at_every_16k_boundary_and_exact_bytes(server: ServerProcess, user: str) -> None:
    first = b"Subject: dots\r\n\r\n" + (b"f" * 1022 + b"\r\n") * 15 + b"g" * 1005 + b"\r\n"
    assert len(first) == 16 * KiB
    # 32 lines of 16 KiB, each starting with "." exactly on a 16 KiB boundary
    # (so also on every 64 KiB read boundary); poplib refuses lines > 2 KiB, so
    # the long lines are built of shorter ones that still keep the alignment.
    block = b"." + b"d" * 1021 + b"\r\n" + (b"e" * 1022 + b"\r\n") * 15
    assert len(block) == 16 * KiB
    raw = first + block * 32 + b".\r\n..\r\n"
    deliver(server, user, raw)
    deliver(server, user, simple(2))
    p = pop3s(server, user)
    assert p.stat() == (2, len(raw) + len(simple(2)))
    assert retr_bytes(p, 1) == raw
    assert retr_bytes(p, 2) == simple(2)
    _resp, top, _ = p.top(1, 2)
    assert top == [b"Subject: dots", b"", b"f" * 1022, b"f" * 1022]
    _resp, top, _ = p.top(1, 17)
    assert top[-2:] == [b"g" * 1005, b"." + b"d" * 1021]
    p.quit()


def test_twenty_mib_message_streams(server: ServerProcess, user: str) -> None:
    line = b"0123456789" * 100 + b"\r\n"
    raw = b"Subject: big\r\n\r\n" + line * (20 * MiB // len(line))
    deliver(server, user, raw)
    p = pop3s(server, user)
    assert p.list(1).split()[2] == str(len(raw)).encode()
    before = rss(server)
    sampler = RssSampler(server)
    sampler.start()
    try:
        got = retr_bytes(p, 1)
    finally:
        sampler.done.set()
        sampler.join()
    assert hashlib.sha256(got).digest() == hashlib.sha256(raw).digest()
    p.quit()
    # streamed, not loaded whole: the server's memory grew by far less than the message
    print("server RSS grew by", sampler.peak - before)
    assert sampler.peak - before < 10 * MiB


def test_client_gone_in_the_middle_of_a_big_retr(server: ServerProcess, user: str) -> None:
    raw = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * (8 * KiB)
    deliver(server, user, raw)
    p = pop3s(server, user)
    p._putcmd("RETR 1")  # type: ignore[attr-defined]
    assert p._getresp().startswith(b"+OK")  # type: ignore[attr-defined]
    p.file.read(100 * KiB)
    p.sock.close()  # gone mid-message, without QUIT
    p2 = pop3s(server, user)
    assert p2.stat() == (1, len(raw))  # the server carries on
    p2.quit()


def test_dropped_connection_keeps_every_dele_marked_message(
    server: ServerProcess, user: str
) -> None:
    for n in range(1, 6):
        deliver(server, user, simple(n))
    p = pop3s(server, user)
    for n in range(1, 6):
        p.dele(n)
    p.sock.close()  # no QUIT
    p2 = pop3s(server, user)
    assert p2.stat()[0] == 5
    p2.dele(2)
    p2.dele(4)
    p2.quit()
    assert len(inbox_uids(server, user)) == 3
    p3 = pop3s(server, user)
    assert [retr_bytes(p3, n) for n in (1, 2, 3)] == [simple(1), simple(3), simple(5)]
    p3.quit()


def test_imap_and_pop3_on_one_mailbox(server: ServerProcess, user: str) -> None:
    uids = [deliver(server, user, simple(n)) for n in (1, 2, 3, 4)]
    p = pop3s(server, user)
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    try:
        imap.login(user, PASSWORD)
        _typ, data = imap.select("INBOX")
        assert data[0] == b"4"
        _typ, status = imap.status("INBOX", "(UIDVALIDITY)")
        uidvalidity = int(status[0].split()[-1].rstrip(b")"))
        # UIDL agrees with IMAP's view (UID + UIDVALIDITY)
        expected = [b"%d %08X%08X" % (i + 1, u, uidvalidity) for i, u in enumerate(uids)]
        assert p.uidl()[1] == expected
        # IMAP expunges message 1 while the POP3 session holds its snapshot
        imap.uid("STORE", str(uids[0]), "+FLAGS.SILENT", r"(\Deleted)")
        imap.expunge()
        with pytest.raises(poplib.error_proto, match="removed"):
            p.retr(1)
        assert retr_bytes(p, 2) == simple(2)
        # POP3 deletes message 3; IMAP sees it go after QUIT
        p.dele(3)
        p.quit()
        imap.noop()
        _typ, data = imap.uid("SEARCH", "ALL")
        assert [int(x) for x in data[0].split()] == [uids[1], uids[3]]
    finally:
        imap.logout()


def test_garbage_commands_each_get_err(server: ServerProcess, user: str) -> None:
    deliver(server, user, simple(1))
    raw = socket.create_connection(("127.0.0.1", server.ports["pop3s"]), timeout=30)
    s = tls_context().wrap_socket(raw)
    f = s.makefile("rwb")

    def cmd(line: bytes) -> bytes:
        f.write(line + b"\r\n")
        f.flush()
        return f.readline()

    assert f.readline().startswith(b"+OK")
    assert cmd(b"RETR 1").startswith(b"-ERR")
    assert cmd(b"USER " + user.encode()).startswith(b"+OK")
    assert cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    for junk in (
        b"DELE 0",
        b"RETR 99999999999999999999",
        b"TOP 1 -1",
        b"TOP 1",
        b"LIST 2",
        b"\xff\xfe\x00",
        b"RETR 1 1",
        b"APOP x y",
        b"X" * 3000,
    ):
        assert cmd(junk).startswith(b"-ERR"), junk
    assert cmd(b"STAT").startswith(b"+OK 1 ")
    assert cmd(b"QUIT").startswith(b"+OK")
    s.close()
    assert len(inbox_uids(server, user)) == 1


def test_auth_plain_with_initial_response(server: ServerProcess, user: str) -> None:
    import base64

    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=30)
    token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
    assert p._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")  # type: ignore[attr-defined]
    assert p.stat() == (0, 0)
    p.quit()
    bad = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=tls_context(), timeout=30)
    token = base64.b64encode(f"\0{user}\0wrong".encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        bad._shortcmd(f"AUTH PLAIN {token}")  # type: ignore[attr-defined]
    bad.close()


def test_server_log_has_no_tracebacks(server: ServerProcess) -> None:
    assert "Traceback" not in server.log()
