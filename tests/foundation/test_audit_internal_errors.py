"""Acceptance audit: internal faults never reach a client as exception text or
a path (DESIGN.md §4 rule 4), in SMTP, POP3, IMAP and ``mailsuite-admin``.

The faults are provoked for real by damaging a user's Maildir while the
server runs (the tests run as any user, so no permission tricks): the
``dovecot-uidlist`` replaced by a directory, message files replaced by
directories, ``cur/`` replaced by a file.  Each client must get the
protocol's generic temporary error, the session must stay usable where the
protocol allows it, and the detail must be in the server log.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

PASSWORD = "internal-Secret-1"
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
# a path (two slashes), an exception class or text, a file name of ours
LEAKS = re.compile(
    rb"/[^/\s]*/|Errno|[A-Z][a-z]+Error\b|Exception|Traceback|\.py\b|uidlist|[Mm]aildir"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("audit-internal"),
        roles=("smtp", "pop3", "imap"),
        extra_config={"auth": {**FAST_HASH, "allow_plaintext": True}},
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def account(srv: ServerProcess, name: str) -> Path:
    """A user with one delivered message; returns its maildir."""
    address = f"{name}@example.test"
    srv.add_user(address, PASSWORD)
    code, _ = srv.admin("deliver", address, stdin="Subject: hello\n\nhello\n")
    assert code == 0
    return srv.maildir / "example.test" / name


def break_uidlist(root: Path) -> None:
    (root / "dovecot-uidlist").unlink(missing_ok=True)
    (root / "dovecot-uidlist").mkdir()


def break_messages(root: Path) -> None:
    """Let the message be listed (and given a UID) but make it unreadable."""
    for f in [*root.glob("new/*"), *root.glob("cur/*")]:
        f.unlink()
        f.mkdir()


def break_cur(root: Path) -> None:
    shutil.rmtree(root / "cur")
    (root / "cur").write_text("not a directory")


def talk(srv: ServerProcess, role: str, commands: list[bytes]) -> list[bytes]:
    """Send each command, collect every reply line until a short quiet period."""
    lines: list[bytes] = []
    with socket.create_connection(("127.0.0.1", srv.ports[role]), timeout=10) as s:
        f = s.makefile("rb")
        lines.append(f.readline())
        for command in commands:
            try:
                s.sendall(command)
            except OSError:
                break
            lines.extend(read_reply(f, role, command))
            if lines[-1] == b"":
                break
    return lines


def read_reply(f: io.BufferedReader, role: str, command: bytes) -> list[bytes]:
    out = [f.readline()]
    if role == "imap":
        tag = command.split(b" ", 1)[0]
        while out[-1] and not out[-1].startswith(tag + b" "):
            out.append(f.readline())
    elif role == "smtp":
        while out[-1][3:4] == b"-":
            out.append(f.readline())
    elif out[-1].startswith(b"+OK") and command.startswith(b"RETR"):
        while out[-1] not in (b".\r\n", b""):
            out.append(f.readline())
    return out


def assert_clean(lines: list[bytes]) -> None:
    for line in lines:
        if line.startswith((b"* LIST", b"* OK [CAPABILITY", b"250-", b"220 ")):
            continue
        assert not LEAKS.search(line), line


def login(name: str) -> bytes:
    return f"a LOGIN {name}@example.test {PASSWORD}\r\n".encode()


def test_imap_select_with_broken_uidlist(server: ServerProcess) -> None:
    break_uidlist(account(server, "ib1"))
    lines = talk(
        server,
        "imap",
        [login("ib1"), b"b SELECT INBOX\r\n", b"c STATUS INBOX (MESSAGES)\r\n", b"d NOOP\r\n"],
    )
    assert_clean(lines)
    assert any(line.startswith(b"b NO [SERVERBUG]") for line in lines), lines
    assert lines[-1].startswith(b"d OK")  # the session goes on


def test_imap_fetch_of_unreadable_message(server: ServerProcess) -> None:
    break_messages(account(server, "ib2"))
    lines = talk(
        server,
        "imap",
        [login("ib2"), b"b SELECT INBOX\r\n", b"c FETCH 1 BODY[]\r\n", b"d NOOP\r\n"],
    )
    assert_clean(lines)
    assert any(line.startswith(b"c NO [SERVERBUG]") for line in lines), lines
    assert lines[-1].startswith(b"d OK")


def test_imap_login_with_broken_maildir(server: ServerProcess) -> None:
    break_cur(account(server, "ib3"))
    lines = talk(server, "imap", [login("ib3"), b"b NOOP\r\n"])
    assert_clean(lines)
    assert lines[-1].startswith(b"b OK")


def test_pop3_login_with_broken_uidlist(server: ServerProcess) -> None:
    break_uidlist(account(server, "pb1"))
    lines = talk(server, "pop3", [b"USER pb1@example.test\r\n", f"PASS {PASSWORD}\r\n".encode()])
    assert_clean(lines)
    assert lines[2].startswith(b"-ERR [SYS/TEMP]"), lines


def test_pop3_retr_of_unreadable_message_keeps_the_mail(server: ServerProcess) -> None:
    root = account(server, "pb2")
    break_messages(root)
    lines = talk(
        server,
        "pop3",
        [
            b"USER pb2@example.test\r\n",
            f"PASS {PASSWORD}\r\n".encode(),
            b"DELE 1\r\n",
            b"RSET\r\n",
            b"RETR 1\r\n",
            b"QUIT\r\n",
        ],
    )
    assert_clean(lines)
    assert any(line.startswith(b"-ERR [SYS/TEMP]") for line in lines), lines
    assert len([*root.glob("cur/*"), *root.glob("new/*")]) == 1  # nothing deleted


def test_smtp_delivery_to_broken_maildir_is_temporary(server: ServerProcess) -> None:
    break_cur(account(server, "sb1"))
    lines = talk(
        server,
        "smtp",
        [
            b"EHLO x\r\n",
            b"MAIL FROM:<a@remote.example>\r\n",
            b"RCPT TO:<sb1@example.test>\r\n",
            b"DATA\r\n",
            b"Subject: x\r\n\r\nbody\r\n.\r\n",
            b"NOOP\r\n",
        ],
    )
    assert_clean(lines)
    assert lines[-2].startswith(b"451 4.3.0"), lines
    assert lines[-1].startswith(b"250")


def test_admin_deliver_to_broken_maildir(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    break_cur(account(server, "ab1"))
    capsys.readouterr()
    code, _ = server.admin("deliver", "ab1@example.test", stdin="Subject: x\n\nx\n")
    err = capsys.readouterr().err
    assert code == 75
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_details_are_logged_not_sent(server: ServerProcess) -> None:
    # its own fault: under pytest-xdist the other tests may run elsewhere
    break_cur(account(server, "logged1"))
    lines = talk(
        server,
        "smtp",
        [
            b"EHLO x\r\n",
            b"MAIL FROM:<a@remote.example>\r\n",
            b"RCPT TO:<logged1@example.test>\r\n",
            b"DATA\r\n",
            b"Subject: x\r\n\r\nbody\r\n.\r\n",
        ],
    )
    assert_clean(lines)
    log = server.log()
    assert "NotADirectoryError" in log or "IsADirectoryError" in log or "Errno" in log
