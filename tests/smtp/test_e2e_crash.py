"""Crash test: the server is SIGKILLed during a burst of deliveries.

Every message the server acknowledged with 250 must be in the maildir
exactly once and whole; a message that was not acknowledged may be there
(the commit finished but the reply was lost) but never partially.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

SESSIONS = 8


def content(token: str) -> bytes:
    head = f"Subject: crash {token}\r\nMessage-ID: <{token}@client.example>\r\n\r\n".encode()
    return head + (f"{token} ".encode() * 10 + b"\r\n") * 40


def read_reply(f: object) -> bytes:
    line: bytes = f.readline()  # type: ignore[attr-defined]
    while line[3:4] == b"-":
        line = f.readline()  # type: ignore[attr-defined]
    if not line:
        raise ConnectionError("closed")
    return line


def sender(port: int, index: int, acked: list[str], stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            f = sock.makefile("rb")
            read_reply(f)
            sock.sendall(b"EHLO client.example\r\n")
            read_reply(f)
            n = 0
            while not stop.is_set():
                token = f"t{index}x{n}"
                n += 1
                sock.sendall(
                    b"MAIL FROM:<c@remote.example>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
                )
                if [read_reply(f)[:3] for _ in range(3)] != [b"250", b"250", b"354"]:
                    return
                sock.sendall(content(token) + b".\r\n")
                if read_reply(f).startswith(b"250"):
                    acked.append(token)
    except OSError:
        return


def test_sigkill_during_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, roles=("smtp",))
    srv.start()
    try:
        srv.add_user("victim@example.test", "pw-not-used")
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender, args=(srv.ports["smtp"], i, acked, stop))
            for i in range(SESSIONS)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.kill()
        stop.set()
        for t in threads:
            t.join(15)
    finally:
        srv.stop()
    assert len(acked) >= 150
    root = srv.maildir / "example.test" / "victim"
    files = [p for sub in ("new", "cur") for p in (root / sub).iterdir()]
    found: dict[str, int] = {}
    for path in files:
        data = path.read_bytes()
        m = re.search(rb"Subject: crash (t\d+x\d+)\r\n", data)
        assert m, f"unrecognised file {path.name}"
        token = m.group(1).decode()
        assert data.endswith(content(token)), f"partial message {path.name}"
        found[token] = found.get(token, 0) + 1
    assert all(n == 1 for n in found.values()), "duplicated messages"
    missing = [t for t in acked if t not in found]
    assert missing == [], f"{len(missing)} acknowledged messages lost"
