"""A large message is streamed to the maildir with bounded server memory."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

LINE = b"0123456789" * 9 + b"abcdefgh\r\n"  # 100 octets
COUNT = 300_000  # 30 MB


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_code(f: object) -> bytes:
    line: bytes = f.readline()  # type: ignore[attr-defined]
    while line[3:4] == b"-":
        line = f.readline()  # type: ignore[attr-defined]
    return line[:3]


def test_30_mb_message_streams(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, roles=("smtp",)) as srv:
        srv.add_user("big@example.test", "unused-password")
        assert srv.proc is not None
        pid = srv.proc.pid
        before = rss_kib(pid)
        digest = hashlib.sha256()
        with socket.create_connection(("127.0.0.1", srv.ports["smtp"]), timeout=60) as sock:
            f = sock.makefile("rb")
            assert read_code(f) == b"220"
            sock.sendall(b"EHLO client.example\r\n")
            assert read_code(f) == b"250"
            sock.sendall(b"MAIL FROM:<s@remote.example>\r\nRCPT TO:<big@example.test>\r\nDATA\r\n")
            assert [read_code(f) for _ in range(3)] == [b"250", b"250", b"354"]
            head = b"Subject: big\r\n\r\n"
            digest.update(head)
            sock.sendall(head)
            block = LINE * 1000
            peak = 0
            for i in range(COUNT // 1000):
                sock.sendall(block)
                digest.update(block)
                if i % 50 == 0:
                    peak = max(peak, rss_kib(pid))
            sock.sendall(b".\r\n")
            assert read_code(f) == b"250"
        peak = max(peak, rss_kib(pid))
        assert peak - before < 20 * 1024, f"server grew by {peak - before} KiB"
        (path,) = list((srv.maildir / "example.test" / "big" / "new").iterdir())
        data = path.read_bytes()
        body = data[data.index(b"Subject: big\r\n") :]
        assert hashlib.sha256(body).digest() == digest.digest()
