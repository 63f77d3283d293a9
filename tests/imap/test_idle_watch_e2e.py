"""End to end: IMAP IDLE on the real ``twistd mailsuite`` reports a delivery
by another process (``mailsuite-admin deliver`` in a subprocess, like an MTA
calling the LDA) through the folder watcher's inotify.

``imap.idle_poll_interval`` is an hour, so an EXISTS that arrives at all was
not found by polling; the wait is bounded generously (no timed assertion:
bench/imap_idle.py prints the latency).
"""

from __future__ import annotations

import imaplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerProcess, subprocess_env

imapclient = pytest.importorskip("imapclient")
pytestmark = pytest.mark.slow

PASSWORD = "idle watch secret"
WAIT = 30.0


def _inotify_works() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        from twisted.internet import inotify

        inotify.INotify().loseConnection()
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not _inotify_works():
        pytest.skip("inotify is not available")
    srv = ServerProcess(
        tmp_path_factory.mktemp("idlewatch"),
        roles=("imap",),
        extra_config={
            "imap": {"idle_poll_interval": 3600.0},
            "auth": {"allow_plaintext": True},
        },
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def admin_deliver(server: ServerProcess, address: str, n: int) -> None:
    """``mailsuite-admin deliver`` in its own process."""
    message = (
        f"From: a@example.test\r\nTo: {address}\r\nSubject: wake {n}\r\n"
        f"Message-ID: <wake-{n}@example.test>\r\n\r\nNew mail.\r\n"
    ).encode()
    cli = [sys.executable, "-m", "mailsuite.admin.cli", "-c", str(server.config_path)]
    subprocess.run(
        [*cli, "deliver", address],
        input=message,
        env=subprocess_env(),
        check=True,
        capture_output=True,
        cwd=Path(server.config_path).parent,
    )


def test_imapclient_idle_sees_admin_deliver_from_another_process(server: ServerProcess) -> None:
    address = "idler@example.test"
    server.add_user(address, PASSWORD)
    client = imapclient.IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False)
    try:
        client.login(address, PASSWORD)
        client.select_folder("INBOX")
        client.idle()
        for n in (1, 2):
            admin_deliver(server, address, n)
            deadline = time.monotonic() + WAIT
            seen: list[object] = []
            while time.monotonic() < deadline and (n, b"EXISTS") not in seen:
                seen.extend(client.idle_check(timeout=1.0))
            assert (n, b"EXISTS") in seen, server.log()[-3000:]
        client.idle_done()
        assert client.search(["ALL"]) == [1, 2]
    finally:
        client.logout()


def test_imaplib_idle_sees_admin_deliver(server: ServerProcess) -> None:
    address = "idler2@example.test"
    server.add_user(address, PASSWORD)
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    try:
        m.login(address, PASSWORD)
        m.select("INBOX")
        tag = m._new_tag().decode()  # type: ignore[attr-defined]
        m.send(f"{tag} IDLE\r\n".encode())
        assert m.readline().startswith(b"+")
        admin_deliver(server, address, 1)
        m.sock.settimeout(WAIT)
        assert m.readline() == b"* 1 EXISTS\r\n"
        m.send(b"DONE\r\n")
        lines = [m.readline()]
        while not lines[-1].startswith(tag.encode()):
            lines.append(m.readline())
        assert b"OK" in lines[-1]
    finally:
        m.sock.settimeout(None)
        m.logout()
