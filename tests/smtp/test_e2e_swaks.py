"""End to end with Debian's ``swaks`` (skipped when it is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

SWAKS = shutil.which("swaks")
PASSWORD = "swaks-pass-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if SWAKS is None:
        pytest.skip("swaks not installed (apt-get install swaks)")
    srv = ServerProcess(
        tmp_path_factory.mktemp("swaks"),
        roles=("smtp", "submission", "submissions"),
        extra_config={
            "auth": {"argon2_time_cost": 1, "argon2_memory_cost": 8, "argon2_parallelism": 1}
        },
    )
    srv.start()
    srv.add_user("rcpt@example.test", PASSWORD)
    srv.add_user("user@example.test", PASSWORD)
    yield srv
    srv.stop()


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    assert SWAKS is not None
    return subprocess.run(
        [SWAKS, "--silent", "1", "--timeout", "10", "--helo", "client.example", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def inbox(srv: ServerProcess, user: str) -> list[bytes]:
    root = srv.maildir / "example.test" / user
    return [p.read_bytes() for sub in ("new", "cur") for p in sorted((root / sub).glob("*"))]


def test_swaks_mx_pipelined(server: ServerProcess) -> None:
    before = len(inbox(server, "rcpt"))
    res = swaks(
        "--server", f"127.0.0.1:{server.ports['smtp']}",
        "--from", "someone@remote.example",
        "--to", "rcpt@example.test",
        "--pipeline",
        "--header", "Subject: via swaks",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(inbox(server, "rcpt")) == before + 1


def test_swaks_submission_starttls_auth(server: ServerProcess) -> None:
    res = swaks(
        "--server", f"127.0.0.1:{server.ports['submission']}",
        "--from", "user@example.test",
        "--to", "rcpt@example.test",
        "--tls",
        "--auth", "PLAIN",
        "--auth-user", "user@example.test",
        "--auth-password", PASSWORD,
        "--header", "Subject: submitted",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert any(b"Subject: submitted" in m and b"ESMTPSA" in m for m in inbox(server, "rcpt"))


def test_swaks_submissions_login_wrong_password(server: ServerProcess) -> None:
    res = swaks(
        "--server", f"127.0.0.1:{server.ports['submissions']}",
        "--tlsc",
        "--from", "user@example.test",
        "--to", "rcpt@example.test",
        "--auth", "LOGIN",
        "--auth-user", "user@example.test",
        "--auth-password", "wrong",
    )  # fmt: skip
    assert res.returncode == 28  # swaks: authentication failed
    assert "535 5.7.8" in res.stdout + res.stderr


def test_swaks_auth_not_offered_without_tls(server: ServerProcess) -> None:
    res = swaks(
        "--server", f"127.0.0.1:{server.ports['submission']}",
        "--from", "user@example.test",
        "--to", "rcpt@example.test",
        "--auth", "PLAIN",
        "--auth-user", "user@example.test",
        "--auth-password", PASSWORD,
    )  # fmt: skip
    assert res.returncode == 28
    assert "did not advertise authentication" in res.stdout + res.stderr
