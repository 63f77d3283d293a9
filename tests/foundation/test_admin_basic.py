"""mailsuite-admin: --help, version, check-config, exit codes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from mailsuite import __version__
from mailsuite.admin import exits
from mailsuite.admin.cli import main
from tests.harness import subprocess_env


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, stdout=out), out.getvalue()


def test_version() -> None:
    assert run(["version"]) == (0, f"mailsuite {__version__}\n")


def test_check_config_good(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[smtp]\nmax_recipients = 5\n")
    code, out = run(["-c", str(p), "check-config"])
    assert code == 0 and str(p) in out


def test_check_config_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[smtp]\nmax_recipients = -1\n")
    code, _ = run(["-c", str(p), "check-config"])
    assert code == exits.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "smtp.max_recipients" in err and "Traceback" not in err


def test_usage_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["no-such-command"])[0] == exits.USAGE
    assert run([])[0] == exits.USAGE


def test_help_subprocess() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mailsuite.admin.cli", "--help"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=False,
    )
    assert r.returncode == 0
    assert "check-config" in r.stdout


def test_every_subcommand_has_help() -> None:
    from mailsuite.admin.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        out = io.StringIO()
        code = main([name, "--help"], stdout=out)
        assert code == 0, name
