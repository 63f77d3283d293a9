"""Acceptance audit: every configured limit is enforced on the real server with
a clear protocol reply, and the session (or the server) survives it.

Covered: connections per IP and in total (shared by all listeners, released
on close), failed-login throttling per source in SMTP, POP3 and IMAP (the
owner elsewhere is never locked out), command line lengths in the three
protocols, IMAP literal sizes before and after login (checked before the
continuation), SMTP recipients per message, SMTP message size, SMTP errors
per session.  Loopback addresses other than 127.0.0.1 act as other clients.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

USER = "limits@example.test"
PASSWORD = "limits-Secret-1"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


class Lines:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def smtp(self) -> bytes:
        line = self.line()
        while line[3:4] == b"-":
            line = self.line()
        return line

    def tagged(self, tag: bytes) -> bytes:
        line = self.line()
        while line and not line.startswith(tag + b" "):
            line = self.line()
        return line

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# -- connection limits -------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("audit-conn-limits"),
        roles=("smtp", "pop3", "imap"),
        extra_config={"limits": {"max_connections_per_ip": 2, "max_connections": 3}},
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


REFUSALS = {
    "smtp": b"421 4.7.0 ",
    "pop3": b"-ERR [SYS/TEMP] ",
    "imap": b"* BYE [UNAVAILABLE] ",
}
GREETINGS = {"smtp": b"220 ", "pop3": b"+OK ", "imap": b"* OK "}


def greeting_of(port: int, source: str) -> bytes:
    with connect(port, source) as s:
        return s.makefile("rb").readline()


def wait_released(port: int, role: str) -> None:
    """Closed connections are released once the server has seen the close."""
    deadline = time.monotonic() + 10
    while not greeting_of(port, "127.0.0.9").startswith(GREETINGS[role]):
        assert time.monotonic() < deadline, "connection slots never released"
        time.sleep(0.05)


@pytest.mark.parametrize("role", ["smtp", "pop3", "imap"])
def test_connections_per_ip_and_total(small: ServerProcess, role: str) -> None:
    port = small.ports[role]
    wait_released(port, role)
    held = []
    try:
        for _ in range(2):
            s = connect(port)
            held.append(s)
            assert s.makefile("rb").readline().startswith(GREETINGS[role])
        # a third from the same address: refused with the protocol's reply, then closed
        with connect(port) as s:
            f = s.makefile("rb")
            assert f.readline().startswith(REFUSALS[role])
            assert f.readline() == b""
        # another address still gets in (per-IP limit, total 3)...
        s = connect(port, "127.0.0.2")
        held.append(s)
        assert s.makefile("rb").readline().startswith(GREETINGS[role])
        # ...but a fourth connection from anywhere exceeds the total
        with connect(port, "127.0.0.3") as s:
            assert s.makefile("rb").readline().startswith(REFUSALS[role])
    finally:
        for s in held:
            s.close()
    wait_released(port, role)


def test_total_limit_is_shared_by_all_listeners(small: ServerProcess) -> None:
    for role in ("smtp", "pop3", "imap"):
        wait_released(small.ports[role], role)
    held = [connect(small.ports[r], f"127.0.0.{n}") for n, r in enumerate(GREETINGS, 20)]
    try:
        for s, role in zip(held, GREETINGS, strict=True):
            assert s.makefile("rb").readline().startswith(GREETINGS[role])
        with connect(small.ports["imap"], "127.0.0.30") as s:
            assert s.makefile("rb").readline().startswith(REFUSALS["imap"])
    finally:
        for s in held:
            s.close()


# -- the other limits ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("audit-limits"),
        roles=("smtp", "submission", "pop3", "imap"),
        extra_config={
            "auth": {
                **FAST_HASH,
                "allow_plaintext": True,
                "throttle_base_delay": 0.0,
                "throttle_max_failures": 2,
            },
            "smtp": {"max_recipients": 3, "max_message_size": 10_000, "max_errors": 3},
            "imap": {"max_literal_size": 20_000, "max_line_length": 4096},
            "pop3": {"max_line_length": 255},
        },
    )
    srv.start()
    try:
        srv.add_user(USER, PASSWORD)
        yield srv
    finally:
        srv.stop()


def smtp_auth(srv: ServerProcess, source: str, password: str) -> bytes:
    with connect(srv.ports["submission"], source) as s:
        c = Lines(s)
        c.line()
        c.send(b"EHLO x\r\n")
        c.smtp()
        blob = base64.b64encode(f"\0{USER}\0{password}".encode())
        c.send(b"AUTH PLAIN " + blob + b"\r\n")
        return c.smtp()


def pop3_auth(srv: ServerProcess, source: str, password: str) -> bytes:
    with connect(srv.ports["pop3"], source) as s:
        c = Lines(s)
        c.line()
        c.send(f"USER {USER}\r\nPASS {password}\r\n".encode())
        c.line()
        return c.line()


def imap_auth(srv: ServerProcess, source: str, password: str) -> bytes:
    with connect(srv.ports["imap"], source) as s:
        c = Lines(s)
        c.line()
        c.send(f'a LOGIN {USER} "{password}"\r\n'.encode())
        return c.tagged(b"a")


@pytest.mark.parametrize(
    "login, failed, refused, ok, source",
    [
        (smtp_auth, b"535 5.7.8", b"454 4.7.0", b"235 ", "127.0.1.1"),
        (pop3_auth, b"-ERR [AUTH]", b"-ERR [SYS/TEMP]", b"+OK", "127.0.1.2"),
        (imap_auth, b"a NO [AUTHENTICATIONFAILED]", b"a NO [UNAVAILABLE]", b"a OK", "127.0.1.3"),
    ],
)
def test_failed_logins_are_throttled_per_source(
    server: ServerProcess, login, failed: bytes, refused: bytes, ok: bytes, source: str
) -> None:
    for _ in range(2):
        assert login(server, source, "wrong").startswith(failed)
    # the source is now refused, even with the right password...
    assert login(server, source, "wrong").startswith(refused)
    assert login(server, source, PASSWORD).startswith(refused)
    # ...while the owner connecting from elsewhere is not locked out
    assert login(server, source.replace("127.0.1.", "127.0.2."), PASSWORD).startswith(ok)


def test_smtp_line_length_recipients_size_and_errors(server: ServerProcess) -> None:
    with connect(server.ports["smtp"]) as s:
        c = Lines(s)
        c.line()
        c.send(b"EHLO x\r\n")
        assert b"SIZE 10000" in c.line() + c.line() + c.line()
        c.smtp()
        c.send(b"NOOP " + b"x" * 3000 + b"\r\n")
        assert c.smtp().startswith(b"500 5.5.6")
        c.send(b"MAIL FROM:<a@remote.example> SIZE=10001\r\n")
        assert c.smtp().startswith(b"552 5.3.4")
        c.send(b"MAIL FROM:<a@remote.example>\r\n")
        assert c.smtp().startswith(b"250")
        for n in range(3):
            c.send(
                f"RCPT TO:<{USER}>\r\n".encode()
                if n == 0
                else b"RCPT TO:<limits+%d@example.test>\r\n" % n
            )
            assert c.smtp().startswith(b"250")
        c.send(b"RCPT TO:<limits+9@example.test>\r\n")
        assert c.smtp().startswith(b"452 4.5.3")
    with connect(server.ports["smtp"]) as s:  # a fresh session: errors are counted
        c = Lines(s)
        c.line()
        c.send(f"EHLO x\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<{USER}>\r\n".encode())
        c.smtp(), c.smtp(), c.smtp()
        c.send(b"DATA\r\n")
        assert c.smtp().startswith(b"354")
        c.send(b"Subject: big\r\n\r\n" + b"y" * 900 + b"\r\n")
        c.send((b"z" * 900 + b"\r\n") * 12 + b".\r\n")
        assert c.smtp().startswith(b"552 5.3.4")
        c.send(b"NOOP\r\n")
        assert c.smtp().startswith(b"250")


def test_smtp_too_many_errors_closes(server: ServerProcess) -> None:
    with connect(server.ports["smtp"]) as s:
        c = Lines(s)
        c.line()
        replies = []
        for _ in range(5):
            try:
                c.send(b"BOGUS\r\n")
            except OSError:
                break
            reply = c.smtp()
            replies.append(reply)
            if reply.startswith(b"421") or not reply:
                break
        assert any(r.startswith(b"421 4.7.0") for r in replies), replies
        assert c.line() == b""


def test_pop3_line_length(server: ServerProcess) -> None:
    with connect(server.ports["pop3"]) as s:
        c = Lines(s)
        c.line()
        c.send(b"USER " + b"u" * 400 + b"\r\n")
        assert c.line().startswith(b"-ERR")
        c.send(b"CAPA\r\n")
        assert c.line().startswith(b"+OK")


def test_imap_line_and_literal_limits(server: ServerProcess) -> None:
    with connect(server.ports["imap"]) as s:
        c = Lines(s)
        c.line()
        # before login: literals are limited to max_unauth_literal_size (8 KiB)
        c.send(b"a LOGIN {9000}\r\n")
        assert c.line().startswith(b"a NO [TOOBIG]")
        c.send(b"b NOOP " + b"x" * 5000 + b"\r\n")
        assert c.tagged(b"b").startswith(b"b BAD")
        c.send(f'c LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        assert c.tagged(b"c").startswith(b"c OK")
        # after login: an APPEND over max_literal_size is refused before "+"
        c.send(b"d APPEND INBOX {20001}\r\n")
        assert c.line().startswith(b"d NO [TOOBIG]")
        c.send(b"e APPEND INBOX {20001+}\r\n" + b"x" * 20001 + b"\r\n")
        assert c.tagged(b"e").startswith((b"e NO [TOOBIG]", b"e BAD"))
        c.send(b"f NOOP " + b"x" * 5000 + b"\r\n")
        assert c.tagged(b"f").startswith(b"f BAD")
        c.send(b"g NOOP\r\n")
        assert c.tagged(b"g").startswith(b"g OK")


def test_no_traceback_in_logs(server: ServerProcess, small: ServerProcess) -> None:
    assert "Traceback" not in server.log()
    assert "Traceback" not in small.log()
