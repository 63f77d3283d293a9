"""twistd plugin discovery and option handling (as a subprocess, as users run it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import REPO, subprocess_env, twistd_command


def twistd(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*twistd_command(), *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_twistd_lists_mailsuite() -> None:
    r = twistd("--help")
    assert r.returncode == 0
    assert "mailsuite" in r.stdout


def test_mailsuite_help() -> None:
    r = twistd("-n", "mailsuite", "--help")
    assert r.returncode == 0
    for opt in ("--config", "--data-dir", "--demo"):
        assert opt in r.stdout


def test_bad_config_one_line_no_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[imap]\nmax_line_length = 10\n")
    r = twistd("-n", "--pidfile=", "mailsuite", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 78
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr + r.stdout
    assert err.count("\n") == 0
    assert str(cfg) in err and "imap.max_line_length" in err


def test_missing_config(tmp_path: Path) -> None:
    r = twistd("-n", "--pidfile=", "mailsuite", "-c", str(tmp_path / "x.toml"), cwd=tmp_path)
    assert r.returncode == 78
    assert "file not found" in r.stderr
