"""Several server processes sharing the listening sockets (``server.workers``).

Unit tests for the pieces of :mod:`mailsuite.workers`, then the real
``twistd mailsuite`` with two processes: both serve connections, mail
delivered through one is read through the other, a killed child is started
again, and neither SIGTERM of the primary nor its sudden death leaves a
child behind.
"""

from __future__ import annotations

import imaplib
import os
import signal
import smtplib
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import task

from mailsuite.config import load
from mailsuite.errors import ConfigError
from mailsuite.worker import inherited_sockets
from mailsuite.workers import accept_one_at_a_time, split_limit, worker_count
from tests.harness import ServerProcess, wait_until

# -- units ----------------------------------------------------------------------


def test_worker_count() -> None:
    assert worker_count(3) == 3
    assert 1 <= worker_count(0) <= 8


def test_split_limit_rounds_up_and_never_reaches_zero() -> None:
    assert split_limit(50, 2) == 25
    assert split_limit(5, 2) == 3
    assert split_limit(1, 4) == 1
    assert split_limit(1000, 1) == 1000


def test_workers_key_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[server]\nworkers = 4\n")
    assert load(path).server.workers == 4
    for bad in ("-1", "65", '"two"'):
        path.write_text(f"[server]\nworkers = {bad}\n")
        with pytest.raises(ConfigError, match="workers"):
            load(path)


def test_inherited_socket_arguments() -> None:
    assert inherited_sockets(["3:smtp:inet", "4:imap:inet6"]) == {
        "smtp": (3, "inet"),
        "imap": (4, "inet6"),
    }
    with pytest.raises(ValueError):
        inherited_sockets(["3:smtp"])


class FakePort:
    """What accept_one_at_a_time uses of a tcp.Port."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.numberAccepts = 100
        self.sessionno = 0
        self.connected = True
        self.disconnecting = False
        self.reading = True
        self.batches: list[int] = []

    def doRead(self) -> None:
        n = min(self.numberAccepts, self.pending)
        self.pending -= n
        self.sessionno += n
        self.batches.append(n)
        self.numberAccepts = 21 if n else 1  # what Twisted does

    def startReading(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False


def test_accept_one_then_leave_the_socket_to_others() -> None:
    clock = task.Clock()
    port: Any = FakePort(pending=3)
    accept_one_at_a_time(port, clock, pause=0.002)
    for accepted in (1, 2, 3):
        port.doRead()  # the reactor calls it only while the port is reading
        assert port.batches == [1] * accepted and not port.reading
        clock.advance(0.002)
        assert port.reading
    port.doRead()  # woken, but another process took the connection
    assert port.batches[-1] == 0 and port.reading


def test_a_closed_port_is_not_resumed() -> None:
    clock = task.Clock()
    port: Any = FakePort(pending=1)
    accept_one_at_a_time(port, clock)
    port.doRead()
    port.connected = False
    clock.advance(1)
    assert not port.reading


# -- the real server with two processes ---------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _worker_pids(pid: int) -> list[int]:
    pids = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"mailsuite.worker" in cmdline:
            pids.append(child)
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def two(tmp_path: Path) -> Any:
    srv = ServerProcess(
        tmp_path,
        {"server": {"workers": 2}, "auth": {"allow_plaintext": True}},
        roles=("smtp", "imap"),
    )
    srv.start()
    try:
        wait_until("worker 1 to run", lambda: "worker 1 (pid" in srv.log())
        yield srv
    finally:
        srv.stop()


def _served_by_both(srv: ServerProcess) -> bool:
    socks = [socket.create_connection(("127.0.0.1", srv.ports["smtp"])) for _ in range(20)]
    for s in socks:
        s.settimeout(10)
        assert s.recv(200).startswith(b"220 ")
        s.close()
    time.sleep(0.3)
    log = srv.log()
    return " w1c" in log and "] c" in log


def test_two_processes_share_the_connections(two: ServerProcess) -> None:
    assert two.proc is not None
    assert len(_worker_pids(two.proc.pid)) == 1
    assert any(_served_by_both(two) for _ in range(5)), two.log()


def test_mail_through_both_processes_reaches_one_mailbox(two: ServerProcess) -> None:
    two.add_user("both@example.test", "pw")
    for n in range(12):
        with smtplib.SMTP("127.0.0.1", two.ports["smtp"], timeout=30) as s:
            s.sendmail("x@remote.test", ["both@example.test"], f"Subject: {n}\r\n\r\nhi\r\n")
    counts = set()
    for _ in range(6):
        m = imaplib.IMAP4("127.0.0.1", two.ports["imap"])
        m.login("both@example.test", "pw")
        _typ, data = m.select("INBOX")
        counts.add(int(data[0] or 0))
        m.logout()
    assert counts == {12}


def test_a_killed_child_is_started_again(two: ServerProcess) -> None:
    assert two.proc is not None
    (old,) = _worker_pids(two.proc.pid)
    os.kill(old, signal.SIGKILL)
    new = wait_until("a new child", lambda: [p for p in _worker_pids(two.proc.pid) if p != old])  # type: ignore[union-attr]
    assert new and old not in new
    wait_until("the new child to run", lambda: two.log().count("worker 1 (pid") >= 2)
    assert "worker-1 ended" in two.log()


def test_sigterm_stops_every_process(two: ServerProcess) -> None:
    assert two.proc is not None
    (child,) = _worker_pids(two.proc.pid)
    two.stop()
    wait_until("the child to exit", lambda: not _alive(child), timeout=15)


def test_a_child_stops_when_the_primary_dies(two: ServerProcess) -> None:
    assert two.proc is not None
    (child,) = _worker_pids(two.proc.pid)
    two.proc.kill()
    two.proc.wait(10)
    wait_until("the child to exit", lambda: not _alive(child), timeout=15)


def test_sighup_reaches_the_children(two: ServerProcess) -> None:
    assert two.proc is not None
    two.proc.send_signal(signal.SIGHUP)
    wait_until(
        "both processes to reload TLS", lambda: two.log().count("TLS certificate reloaded") >= 2
    )
    assert "worker-1 mailsuite.tls#info" in two.log()


def test_a_child_with_a_broken_config_exits_78_with_one_log_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.harness import subprocess_env

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nworkers = 99\n")
    argv = [sys.executable, "-m", "mailsuite.worker", "--index", "1"]
    argv += [f"--data-dir={tmp_path}", f"--config={bad}"]
    done = subprocess.run(
        argv,
        capture_output=True,
        env=subprocess_env(),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 78
    assert b"workers" in done.stdout and b"Traceback" not in done.stderr
