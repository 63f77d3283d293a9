"""Start the real ``twistd mailsuite`` on loopback ports for end-to-end tests.

Usage::

    with ServerProcess(tmp_path, extra_config={"auth": {"allow_plaintext": True}}) as srv:
        srv.admin("domain", "add", "example.test")
        srv.add_user("alice@example.test", "secret")
        smtplib.SMTP("127.0.0.1", srv.ports["smtp"])

Ports are picked free just before start; the server runs as a subprocess
(``twistd -n mailsuite -c <generated config>``) with the repository on
``PYTHONPATH``, its log in ``<tmp>/twistd.log``.  ``admin`` runs
``mailsuite-admin`` in-process through ``main(argv)`` against the same data
directory (the server sees directory changes at once).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ROLES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


def wait_until(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``cond`` every 50 ms until it returns something true (returned);
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    path.write_text("\n".join(lines))


def twistd_command() -> list[str]:
    twistd = Path(sys.executable).with_name("twistd")
    if twistd.exists():
        return [str(twistd)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class ServerProcess:
    """A running mailsuite server in a subprocess."""

    def __init__(
        self,
        tmp: Path,
        extra_config: dict[str, dict[str, Any]] | None = None,
        demo: bool = False,
        roles: tuple[str, ...] = ROLES,
    ) -> None:
        self.tmp = Path(tmp)
        self.data_dir = self.tmp / "data"
        self.config_path = self.tmp / "mailsuite.toml"
        self.log_path = self.tmp / "twistd.log"
        self.ports = {role: free_port() for role in roles}
        sections: dict[str, dict[str, Any]] = {
            # One process unless a test asks for more (tests/test_workers.py).
            "server": {
                "hostname": "mail.example.test",
                "data_dir": str(self.data_dir),
                "workers": 1,
            },
            "listeners": {
                role: (f"tcp:{self.ports[role]}:interface=127.0.0.1" if role in roles else "")
                for role in ROLES
            },
        }
        for name, values in (extra_config or {}).items():
            sections.setdefault(name, {}).update(values)
        write_config(self.config_path, sections)
        self.demo = demo
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> ServerProcess:
        cmd = [
            *twistd_command(),
            "-n",
            "--pidfile=",
            f"--logfile={self.log_path}",
            "mailsuite",
            "-c",
            str(self.config_path),
        ]
        if self.demo:
            cmd.append("--demo")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.tmp,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        pending = set(self.ports)
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log()}")
            for role in list(pending):
                with socket.socket() as s:
                    s.settimeout(0.2)
                    if s.connect_ex(("127.0.0.1", self.ports[role])) == 0:
                        pending.discard(role)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not listen on {pending}:\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return rc

    def kill(self) -> None:
        """SIGKILL: for crash tests."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    # -- administration ------------------------------------------------------
    def admin(self, *argv: str, stdin: str = "") -> tuple[int, str]:
        """Run ``mailsuite-admin`` in-process; returns (exit code, stdout)."""
        from mailsuite.admin.cli import main

        out = io.StringIO()
        code = main(["-c", str(self.config_path), *argv], stdin=io.StringIO(stdin), stdout=out)
        return code, out.getvalue()

    def new_user(self, prefix: str, password: str, domain: str = "example.test") -> str:
        """A fresh account (``<prefix><n>@<domain>``), so tests sharing one
        server stay independent."""
        self._accounts = getattr(self, "_accounts", 0) + 1
        address = f"{prefix}{self._accounts}@{domain}"
        self.add_user(address, password)
        return address

    def add_user(self, address: str, password: str) -> None:
        domain = address.rsplit("@", 1)[1]
        self.admin("domain", "add", domain)  # may already exist
        code, out = self.admin("user", "add", address, "--password-stdin", stdin=password + "\n")
        if code != 0:
            raise RuntimeError(f"user add {address} failed ({code}): {out}")

    @property
    def maildir(self) -> Path:
        return self.data_dir / "mail"
