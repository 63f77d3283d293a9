"""End to end: the real ``twistd mailsuite`` driven by smtplib and raw sockets.

One server per module (starting one costs about a second); every test uses
its own recipients so the maildirs do not interfere.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ServerProcess, free_port

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pass"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("smtp-e2e")
    srv = ServerProcess(
        tmp,
        roles=("smtp", "submission", "submissions"),
        extra_config={
            "smtp": {"max_message_size": 200_000, "max_recipients": 20},
            # Outbound mail goes to a closed local port: every attempt fails
            # temporarily, so a queued message stays in the queue.
            "queue": {"smarthost": f"127.0.0.1:{free_port()}"},
            "auth": {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1},
        },
    )
    srv.start()
    for user in USERS:
        srv.add_user(f"{user}@example.test", PASSWORD)
    srv.add_user("ünïcode@example.test", PASSWORD)
    srv.admin("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    yield srv
    srv.stop()


def messages(srv: ServerProcess, user: str) -> list[bytes]:
    """The messages in ``user``'s INBOX (new/ and cur/)."""
    root = srv.maildir / "example.test" / user
    found = sorted(root.glob("new/*")) + sorted(root.glob("cur/*"))
    return [p.read_bytes() for p in found]


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def mx(srv: ServerProcess) -> smtplib.SMTP:
    return smtplib.SMTP(
        "127.0.0.1", srv.ports["smtp"], local_hostname="client.example", timeout=10
    )


def submission(srv: ServerProcess) -> smtplib.SMTP:
    s = smtplib.SMTP(
        "127.0.0.1", srv.ports["submission"], local_hostname="client.example", timeout=10
    )
    return s


def test_ehlo_keywords_per_role(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        assert s.has_extn("pipelining") and s.has_extn("chunking") and s.has_extn("smtputf8")
        assert s.has_extn("starttls") and s.has_extn("dsn") and s.has_extn("enhancedstatuscodes")
        assert s.esmtp_features["size"] == "200000"
        assert not s.has_extn("auth")
        s.starttls(context=tls_context())
        s.ehlo()
        assert not s.has_extn("auth")
    with submission(server) as s:
        s.ehlo()
        assert not s.has_extn("auth") and s.has_extn("starttls")
        s.starttls(context=tls_context())
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    port = server.ports["submissions"]
    with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_context(), timeout=10) as s:
        s.ehlo()
        assert s.has_extn("auth") and not s.has_extn("starttls")


def test_mx_delivers_to_local_user(server: ServerProcess) -> None:
    body = b"Subject: hello\r\n\r\n.leading dot\r\nline two\r\n"
    with mx(server) as s:
        refused = s.sendmail("someone@remote.example", ["alice@example.test"], body)
    assert refused == {}
    (msg,) = [m for m in messages(server, "alice") if b"leading dot" in m]
    assert msg.startswith(
        b"Return-Path: <someone@remote.example>\r\nReceived: from client.example"
    )
    assert msg.endswith(b"Subject: hello\r\n\r\n.leading dot\r\nline two\r\n")


def test_unknown_recipient(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        s.mail("x@remote.example")
        code, text = s.rcpt("nobody@example.test")
    assert code == 550 and text.startswith(b"5.1.1")


def test_submission_auth_only_after_starttls(server: ServerProcess) -> None:
    with submission(server) as s:
        s.ehlo()
        with pytest.raises(smtplib.SMTPNotSupportedError):
            s.login("carol@example.test", PASSWORD)
        code, _ = s.docmd("AUTH", "PLAIN AGNhcm9sQGV4YW1wbGUudGVzdABzM2NyZXQtcGFzcw==")
        assert code == 538
        s.starttls(context=tls_context())
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("carol@example.test", "wrong")
        s.login("carol@example.test", PASSWORD)
        s.sendmail("carol@example.test", ["dave@example.test"], b"Subject: sub\r\n\r\nhi\r\n")
        code, text = s.mail("alice@example.test")
        assert code == 553 and text.startswith(b"5.7.1")
    (msg,) = messages(server, "dave")
    assert b"(authenticated sender: carol@example.test)" in msg
    assert b"with ESMTPSA" in msg and b"(using TLSv1." in msg


def test_submission_remote_recipient_goes_to_the_queue(server: ServerProcess) -> None:
    port = server.ports["submissions"]
    with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_context(), timeout=10) as s:
        s.login("erin@example.test", PASSWORD)
        s.mail("erin@example.test")
        code, text = s.rcpt("someone@remote.example")
        assert (code, text[:5]) == (250, b"2.1.5")
        code, text = s.data(b"Subject: outbound\r\n\r\nhello\r\n")
    assert code == 250 and text.startswith(b"2.0.0")
    queue_id = text.decode().rsplit("queued as ", 1)[1]
    code, out = server.admin("queue", "list", "--json")
    assert code == 0
    (entry,) = [e for e in json.loads(out) if e["id"] == queue_id]
    assert entry["from"] == "erin@example.test"
    assert [p["address"] for p in entry["pending"]] == ["someone@remote.example"]
    code, out = server.admin("queue", "show", queue_id)
    assert code == 0 and "someone@remote.example" in out
    assert messages(server, "erin") == []  # nothing bounced back


def test_size_refusals(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        code, text = s.mail("x@remote.example", ["SIZE=300000"])
        assert code == 552 and text.startswith(b"5.3.4")
        s.rset()
        # No SIZE parameter: the limit is enforced while receiving.
        assert s.mail("x@remote.example")[0] == 250
        assert s.rcpt("frank@example.test")[0] == 250
        big = b"Subject: big\r\n\r\n" + (b"x" * 900 + b"\r\n") * 250
        code, text = s.data(big)
        assert code == 552 and text.startswith(b"5.3.4")
    assert messages(server, "frank") == []


def test_pipelined_recipients(server: ServerProcess) -> None:
    """smtplib does not pipeline; send the whole transaction in one write."""
    with socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220")
        sock.sendall(b"EHLO client.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(
            b"MAIL FROM:<p@remote.example>\r\n"
            b"RCPT TO:<grace@example.test>\r\n"
            b"RCPT TO:<nobody@example.test>\r\n"
            b"RCPT TO:<someone@remote.example>\r\n"
            b"RCPT TO:<heidi@example.test>\r\n"
            b"DATA\r\n"
        )
        codes = [f.readline()[:3] for _ in range(6)]
        assert codes == [b"250", b"250", b"550", b"554", b"250", b"354"]
        sock.sendall(b"Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        done = f.readline()
        assert done.startswith(b"250 2.0.0 Ok: message accepted for 2 recipients"), done
        assert f.readline().startswith(b"221")
    assert len(messages(server, "grace")) == 1 and len(messages(server, "heidi")) == 1


def test_bdat(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        assert s.mail("b@remote.example")[0] == 250
        assert s.rcpt("ivan@example.test")[0] == 250
        first, last = b"Subject: chunked\r\n\r\n", b"body\r\n\r\n"
        s.send(b"BDAT %d\r\n%s" % (len(first), first))
        assert s.getreply()[0] == 250
        s.send(b"BDAT %d LAST\r\n%s" % (len(last), last))
        assert s.getreply()[0] == 250
    (msg,) = messages(server, "ivan")
    assert msg.endswith(b"Subject: chunked\r\n\r\nbody\r\n\r\n")


def test_smtputf8_address(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        s.command_encoding = "utf-8"
        assert s.mail("x@remote.example")[0] == 250
        code, text = s.rcpt("ünïcode@example.test")
        assert code == 553 and text.startswith(b"5.6.7")
        s.rset()
        refused = s.sendmail(
            "ßender@remote.example",
            ["ünïcode@example.test"],
            "Subject: ü\r\n\r\nhi\r\n".encode(),
            mail_options=["SMTPUTF8"],
        )
    assert refused == {}
    root = server.maildir / "example.test"
    inbox = [p for p in root.iterdir() if p.name.startswith("ü") or "xn--" in p.name]
    assert inbox, list(root.iterdir())


def test_alias_delivers_once_per_mailbox(server: ServerProcess) -> None:
    before = len(messages(server, "alice"))
    with mx(server) as s:
        s.sendmail(
            "x@remote.example",
            ["team@example.test", "alice@example.test"],
            b"Subject: dedupe\r\n\r\nx\r\n",
        )
    assert len(messages(server, "alice")) == before + 1
    assert any(b"dedupe" in m for m in messages(server, "bob"))


def raw_session(srv: ServerProcess, role: str = "smtp") -> tuple[socket.socket, Any]:
    sock = socket.create_connection(("127.0.0.1", srv.ports[role]), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    sock.sendall(b"EHLO client.example\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    return sock, f


def read_code(f: Any) -> bytes:
    line: bytes = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line[:9]


SMUGGLING = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r.\r", b"\r\n\x00.\r\n"]


@pytest.mark.parametrize("shape", SMUGGLING, ids=repr)
def test_smuggling_shapes(server: ServerProcess, shape: bytes) -> None:
    sock, f = raw_session(server)
    with sock:
        sock.sendall(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<judy@example.test>\r\nDATA\r\n")
        assert [read_code(f)[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        sock.sendall(
            b"Subject: smuggle\r\n\r\nfirst"
            + shape
            + b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<judy@example.test>\r\n"
            b"DATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n"
        )
        assert read_code(f) == b"550 5.6.1"
        sock.sendall(b"QUIT\r\n")
        assert read_code(f)[:3] == b"221"
    assert messages(server, "judy") == []


def test_starttls_injection(server: ServerProcess) -> None:
    sock, f = raw_session(server)
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\n")
    assert read_code(f)[:3] == b"220"
    tls = tls_context().wrap_socket(sock, server_hostname="mail.example.test")
    with tls:
        g = tls.makefile("rb")
        tls.sendall(b"RCPT TO:<alice@example.test>\r\n")
        assert read_code(g)[:3] == b"503"  # the injected MAIL was not executed


def test_long_line_injection_in_data(server: ServerProcess) -> None:
    sock, f = raw_session(server)
    with sock:
        sock.sendall(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<judy@example.test>\r\nDATA\r\n")
        assert [read_code(f)[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        sock.sendall(
            b"Subject: long\r\n\r\n"
            + b"x" * 20000
            + b"\r\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<judy@example.test>\r\nDATA\r\n"
        )
        assert read_code(f)[:3] == b"554"
        assert f.readline() == b""  # closed
    assert messages(server, "judy") == []


@pytest.mark.parametrize(
    "rcpt",
    [
        "<judy%remote.example@example.test>",
        "<@example.test:someone@remote.example>",
        '<"someone@remote.example"@example.test>',
        "<judy@example.test.>",
        "<someone@remote.example>",
        "<someone@[127.0.0.1]>",
        "<judy@remote.example@example.test>",
    ],
)
def test_open_relay_attempts_refused(server: ServerProcess, rcpt: str) -> None:
    with mx(server) as s:
        s.ehlo()
        s.mail("x@remote.example")
        code, _ = s.docmd("RCPT TO:" + rcpt)
    assert 500 <= code < 600


def test_source_route_to_local_is_accepted(server: ServerProcess) -> None:
    with mx(server) as s:
        s.ehlo()
        s.mail("x@remote.example")
        assert s.docmd("RCPT TO:<@relay.example:judy@example.test>")[0] == 250


def test_log_has_no_secrets(server: ServerProcess) -> None:
    log = server.log()
    assert PASSWORD not in log
    assert "AGNhcm9s" not in log


def test_maildir_files_are_not_left_in_spool(server: ServerProcess, tmp_path: Path) -> None:
    spool = server.data_dir / "spool" / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []
