"""The real server (twistd) with the queue: submission -> queue -> remote MX,
and a bounce delivered back into the sender's Maildir."""

from __future__ import annotations

import email
import email.policy
import io
import json
import smtplib
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailsuite.admin.cli import main as admin_main
from tests.harness import free_port, subprocess_env, twistd_command, wait_until, write_config

HERE = Path(__file__).resolve().parent


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _received(state: Path) -> list[dict[str, Any]]:
    path = state / "received.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_submission_relays_and_bounces(tmp_path: Path) -> None:
    state, data = tmp_path / "mx", tmp_path / "data"
    state.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "fakes.py"), str(state)], env=subprocess_env()
            )
        )
        ports = json.loads(
            wait_until(
                "fake MX",
                lambda: (state / "ports.json").exists() and (state / "ports.json").read_text(),
            )
        )
        sub_port = free_port()
        cfg = tmp_path / "mailsuite.toml"
        write_config(
            cfg,
            {
                "server": {"hostname": "mail.example.test", "data_dir": str(data)},
                "listeners": {
                    "smtp": "",
                    "submission": f"tcp:{sub_port}:interface=127.0.0.1",
                    "submissions": "",
                    "pop3": "",
                    "pop3s": "",
                    "imap": "",
                    "imaps": "",
                },
                "queue": {
                    "resolver": f"127.0.0.1:{ports['dns']}",
                    "mx_port": ports["mx"],
                    "scan_interval": 1.0,
                },
                "auth": {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1},
            },
        )
        env = subprocess_env()
        env["MAILSUITE_TEST_CONFIG"] = str(cfg)
        cmd = [
            *twistd_command(),
            "-n",
            "--pidfile=",
            f"--logfile={tmp_path / 'twistd.log'}",
            "-y",
            str(HERE / "queue_server.tac"),
        ]
        server = subprocess.Popen(cmd, cwd=tmp_path, env=env)
        procs.append(server)
        wait_until("submission listener", lambda: server.poll() is None and _listening(sub_port))

        def admin(*argv: str, stdin: str = "") -> int:
            return admin_main(
                ["-c", str(cfg), *argv], stdin=io.StringIO(stdin), stdout=io.StringIO()
            )

        assert admin("domain", "add", "example.test") == 0
        assert admin("user", "add", "alice@example.test", "--password-stdin", stdin="pw\n") == 0

        message = (
            b"From: alice@example.test\r\nTo: x@a.test\r\nSubject: out\r\n"
            b"Message-ID: <e2e@example.test>\r\n\r\nhello\r\n"
        )
        with smtplib.SMTP("127.0.0.1", sub_port, timeout=30) as c:
            c.starttls(context=ssl._create_unverified_context())
            c.login("alice@example.test", "pw")
            refused = c.sendmail("alice@example.test", ["x@a.test", "reject@b.test"], message)
        assert refused == {}

        got = wait_until("delivery to the remote MX", lambda: _received(state))
        assert got[0]["from"] == "alice@example.test"
        assert got[0]["rcpts"] == ["x@a.test"]
        assert "Subject: out" in got[0]["data"]

        new = data / "mail" / "example.test" / "alice" / "new"
        bounce_file = wait_until("the bounce", lambda: new.is_dir() and sorted(new.iterdir()))[0]
        bounce = email.message_from_bytes(bounce_file.read_bytes(), policy=email.policy.default)
        assert bounce.get_content_type() == "multipart/report"
        status = bounce.get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
        assert status["Final-Recipient"] == "rfc822;reject@b.test"
        assert status["Status"] == "5.1.1"
        wait_until("an empty queue", lambda: not list((data / "queue" / "env").iterdir()))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
