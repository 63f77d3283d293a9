"""Fixtures for ``mailsuite-admin`` tests: a config with cheap argon2 and a tmp data dir."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailsuite.admin.cli import main
from mailsuite.config import UsersConfig
from mailsuite.users.directory import SQLiteDirectory


@dataclass
class Result:
    code: int
    out: str
    err: str


class Admin:
    """Runs ``main(argv)`` against one data directory."""

    def __init__(self, tmp: Path, capsys: Any) -> None:
        self.data = tmp / "data"
        self.config = tmp / "mailsuite.toml"
        self.config.write_text(
            f'[server]\ndata_dir = "{self.data}"\n\n'
            "[auth]\nargon2_time_cost = 1\nargon2_memory_cost = 8\nargon2_parallelism = 1\n"
        )
        self._capsys = capsys

    def __call__(self, *argv: str, stdin: str | bytes = "") -> Result:
        self._capsys.readouterr()
        out = io.StringIO()
        if isinstance(stdin, bytes):
            inp: Any = io.TextIOWrapper(io.BytesIO(stdin), newline="")
        else:
            inp = io.StringIO(stdin)
        code = main(["-c", str(self.config), *argv], stdin=inp, stdout=out)
        return Result(code, out.getvalue(), self._capsys.readouterr().err)

    def ok(self, *argv: str, stdin: str | bytes = "") -> str:
        r = self(*argv, stdin=stdin)
        assert r.code == 0, (argv, r)
        return r.out

    def directory(self) -> SQLiteDirectory:
        return SQLiteDirectory(self.data / "users.sqlite", UsersConfig())


@pytest.fixture
def admin(tmp_path: Path, capsys: Any) -> Admin:
    return Admin(tmp_path, capsys)
