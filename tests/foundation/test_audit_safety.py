"""Acceptance audit: "safe by default" on the real server, for all three protocols.

One ``twistd mailsuite`` with the shipped defaults (``auth.allow_plaintext``
false) serves every test here; each test talks raw protocol over loopback so
that it sees exactly what a client sees.  What is checked (issues 2, 5, 7, 8;
DESIGN.md §2):

* no password mechanism is offered, and none is accepted, before TLS on the
  plain ports (SMTP submission, POP3, IMAP) -- even with the right password;
* after STARTTLS/STLS they are offered, and CRAM-MD5/APOP never are;
* the MX port never offers AUTH (not even over TLS) and never relays;
* submission over TLS without AUTH cannot start a transaction;
* commands pipelined behind STARTTLS/STLS in the same packet are discarded in
  all three protocols (the plaintext injection of DESIGN.md §2);
* implicit-TLS listeners take TLS 1.2 and 1.3 and refuse TLS 1.1.
"""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

USER = "audit@example.test"
PASSWORD = "audit-Secret-1"
PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("audit-safety"),
        extra_config={
            "auth": {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
        },
    )
    srv.start()
    try:
        srv.add_user(USER, PASSWORD)
        yield srv
    finally:
        srv.stop()


def tls_context(version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


class Conn:
    """A raw line client: send bytes, read lines, upgrade to TLS."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def smtp(self) -> list[bytes]:
        """One SMTP reply (all its lines)."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def pop_multi(self) -> list[bytes]:
        """A POP3 multi-line answer after its +OK line."""
        lines = []
        while (line := self.line()) not in (b".\r\n", b""):
            lines.append(line)
        return lines

    def imap(self, tag: bytes) -> list[bytes]:
        """Every line up to and including the tagged reply ``tag``."""
        lines = [self.line()]
        while not lines[-1].startswith(tag + b" ") and lines[-1]:
            lines.append(self.line())
        return lines

    def start_tls(self) -> None:
        self.sock = tls_context().wrap_socket(self.sock, server_hostname="mail.example.test")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def conns() -> Iterator[list[Conn]]:
    opened: list[Conn] = []
    yield opened
    for c in opened:
        c.close()


def connect(conns: list[Conn], srv: ServerProcess, role: str) -> Conn:
    c = Conn(srv.ports[role])
    conns.append(c)
    return c


# -- SMTP ---------------------------------------------------------------------


def test_submission_refuses_every_auth_before_tls(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "submission")
    assert c.line().startswith(b"220 ")
    c.send(b"EHLO client.example\r\n")
    ehlo = b"".join(c.smtp()).upper()
    assert b"AUTH" not in ehlo and b"STARTTLS" in ehlo
    for command in (b"AUTH PLAIN " + PLAIN, b"AUTH LOGIN", b"AUTH CRAM-MD5"):
        c.send(command + b"\r\n")
        reply = c.smtp()[-1]
        assert reply[:1] == b"5" and reply[:3] != b"235", (command, reply)
    c.send(b"MAIL FROM:<" + USER.encode() + b">\r\n")
    assert c.smtp()[-1][:3] == b"530"


def test_submission_over_tls_offers_auth_and_requires_it(
    server: ServerProcess, conns: list
) -> None:
    c = connect(conns, server, "submission")
    c.line()
    c.send(b"EHLO client.example\r\nSTARTTLS\r\n")
    c.smtp()
    assert c.smtp()[-1][:3] == b"220"
    c.start_tls()
    c.send(b"EHLO client.example\r\n")
    ehlo = b"".join(c.smtp()).upper()
    assert b"AUTH PLAIN LOGIN" in ehlo and b"CRAM-MD5" not in ehlo
    c.send(b"MAIL FROM:<" + USER.encode() + b">\r\n")
    assert c.smtp()[-1].startswith(b"530 5.7.0")
    c.send(b"RCPT TO:<" + USER.encode() + b">\r\n")
    assert c.smtp()[-1][:1] == b"5"
    c.send(b"AUTH PLAIN " + PLAIN + b"\r\n")
    assert c.smtp()[-1][:3] == b"235"


def test_mx_has_no_auth_even_over_tls_and_never_relays(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "smtp")
    c.line()
    c.send(b"EHLO client.example\r\nAUTH PLAIN " + PLAIN + b"\r\n")
    assert b"AUTH" not in b"".join(c.smtp()).upper()
    assert c.smtp()[-1][:1] == b"5"
    c.send(b"STARTTLS\r\n")
    assert c.smtp()[-1][:3] == b"220"
    c.start_tls()
    c.send(b"EHLO client.example\r\n")
    assert b"AUTH" not in b"".join(c.smtp()).upper()
    c.send(b"AUTH PLAIN " + PLAIN + b"\r\n")
    assert c.smtp()[-1][:1] == b"5"
    c.send(b"MAIL FROM:<" + USER.encode() + b">\r\n")
    assert c.smtp()[-1][:3] == b"250"
    c.send(b"RCPT TO:<someone@remote.example>\r\n")
    reply = c.smtp()[-1]
    assert reply[:1] == b"5" and b"5.7." in reply


# -- POP3 ---------------------------------------------------------------------


def test_pop3_offers_and_accepts_no_password_before_stls(
    server: ServerProcess, conns: list
) -> None:
    c = connect(conns, server, "pop3")
    greeting = c.line()
    assert greeting.startswith(b"+OK") and b"<" not in greeting  # no APOP timestamp
    c.send(b"CAPA\r\n")
    assert c.line().startswith(b"+OK")
    capa = [line.strip().upper() for line in c.pop_multi()]
    assert b"STLS" in capa
    assert b"USER" not in capa and not any(line.startswith(b"SASL") for line in capa)
    for command in (
        b"USER " + USER.encode(),
        b"PASS " + PASSWORD.encode(),
        b"AUTH PLAIN " + PLAIN,
        b"AUTH LOGIN",
        b"APOP " + USER.encode() + b" 0123456789abcdef0123456789abcdef",
    ):
        c.send(command + b"\r\n")
        assert c.line().startswith(b"-ERR"), command
    c.send(b"STAT\r\n")
    assert c.line().startswith(b"-ERR")  # still not logged in


def test_pop3_after_stls_offers_user_and_sasl(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "pop3")
    c.line()
    c.send(b"STLS\r\n")
    assert c.line().startswith(b"+OK")
    c.start_tls()
    c.send(b"CAPA\r\n")
    c.line()
    capa = [line.strip().upper() for line in c.pop_multi()]
    assert b"USER" in capa and b"SASL PLAIN LOGIN" in capa and b"STLS" not in capa
    c.send(b"AUTH PLAIN " + PLAIN + b"\r\n")
    assert c.line().startswith(b"+OK")


# -- IMAP ---------------------------------------------------------------------


def test_imap_logindisabled_before_starttls(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "imap")
    greeting = c.line()
    assert b"LOGINDISABLED" in greeting and b"AUTH=" not in greeting
    c.send(b"a CAPABILITY\r\n")
    caps = b"".join(c.imap(b"a"))
    assert b"LOGINDISABLED" in caps and b"AUTH=" not in caps and b"STARTTLS" in caps
    c.send(b"b LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert c.imap(b"b")[-1].startswith(b"b NO")
    c.send(b"c AUTHENTICATE PLAIN " + PLAIN + b"\r\n")
    assert c.imap(b"c")[-1].startswith(b"c NO")
    c.send(b"d SELECT INBOX\r\n")
    assert c.imap(b"d")[-1].startswith(b"d BAD")  # not authenticated


def test_imap_after_starttls_offers_login(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "imap")
    c.line()
    c.send(b"a STARTTLS\r\n")
    assert c.imap(b"a")[-1].startswith(b"a OK")
    c.start_tls()
    c.send(b"b CAPABILITY\r\n")
    caps = b"".join(c.imap(b"b"))
    assert b"LOGINDISABLED" not in caps and b"AUTH=PLAIN" in caps
    assert b"STARTTLS" not in caps and b"CRAM-MD5" not in caps
    c.send(b"c LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert c.imap(b"c")[-1].startswith(b"c OK")


# -- STARTTLS plaintext injection, all three protocols -------------------------


def test_smtp_starttls_injection_discarded(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "submission")
    c.line()
    c.send(b"EHLO x\r\n")
    c.smtp()
    c.send(b"STARTTLS\r\nAUTH PLAIN " + PLAIN + b"\r\n")
    assert c.smtp()[-1][:3] == b"220"
    c.start_tls()
    # The injected AUTH never ran: a fresh EHLO is needed and MAIL needs AUTH.
    c.send(b"MAIL FROM:<" + USER.encode() + b">\r\n")
    assert c.smtp()[-1][:3] == b"503"
    c.send(b"EHLO x\r\nMAIL FROM:<" + USER.encode() + b">\r\n")
    c.smtp()
    assert c.smtp()[-1][:3] == b"530"


def test_pop3_stls_injection_discarded(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "pop3")
    c.line()
    c.send(b"STLS\r\nAUTH PLAIN " + PLAIN + b"\r\n")
    assert c.line().startswith(b"+OK")
    c.start_tls()
    c.send(b"STAT\r\n")
    assert c.line().startswith(b"-ERR")  # the injected AUTH did not log us in
    c.send(b"NOOP\r\n")
    assert c.line().startswith(b"-ERR")


def test_imap_starttls_injection_discarded(server: ServerProcess, conns: list) -> None:
    c = connect(conns, server, "imap")
    c.line()
    c.send(b"a STARTTLS\r\nb LOGIN " + USER.encode() + b" " + PASSWORD.encode() + b"\r\n")
    assert c.line().startswith(b"a OK")
    c.start_tls()
    c.send(b"c SELECT INBOX\r\n")
    lines = c.imap(b"c")
    assert not any(line.startswith(b"b ") for line in lines)  # b was never answered
    assert lines[-1].startswith(b"c BAD")  # not authenticated


# -- implicit TLS --------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
@pytest.mark.parametrize("role", ["submissions", "pop3s", "imaps"])
def test_implicit_tls_versions(server: ServerProcess, role: str) -> None:
    port = server.ports[role]
    for version, name in (
        (ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
        (ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with tls_context(version).wrap_socket(raw) as s:
                assert s.version() == name
                assert s.recv(1)  # a greeting follows the handshake
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, OSError)):
            with tls_context(ssl.TLSVersion.TLSv1_1).wrap_socket(raw) as s:
                s.recv(1)


def test_no_traceback_in_log(server: ServerProcess) -> None:
    assert "Traceback" not in server.log()
