"""The real server process: seven listeners, clean shutdown, demo seeding."""

from __future__ import annotations

import signal
import socket
import ssl
from pathlib import Path

from tests.harness import ROLES, ServerProcess

IMPLICIT_TLS = {"submissions", "pop3s", "imaps"}


def greeting(port: int, tls: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(raw) as s:
                return s.recv(512)
        return raw.recv(512)


def assert_clean_stop(srv: ServerProcess, rc: int | None, sig: int) -> None:
    """twistd ends by re-raising the signal it stopped on (so the exit status
    says "killed by SIGTERM", as for any daemon); a clean stop has run every
    service's stopService and the reactor's shutdown."""
    log = srv.log()
    assert rc in (0, -sig), log
    assert "mailsuite stopped" in log and "Server Shut Down." in log, log
    assert "Traceback" not in log, log


def test_all_listeners_answer_and_stop_cleanly(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path).start()
    try:
        for role in ROLES:
            first = greeting(srv.ports[role], role in IMPLICIT_TLS)
            assert first.endswith(b"\r\n"), (role, first)
            assert first[:1] in (b"2", b"4", b"+", b"-", b"*"), (role, first)
        assert (srv.data_dir / "tls" / "selfsigned.key").exists()
    finally:
        rc = srv.stop(signal.SIGTERM)
    assert_clean_stop(srv, rc, signal.SIGTERM)
    for role in ROLES:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", srv.ports[role])) != 0


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, roles=("smtp",)).start()
    assert_clean_stop(srv, srv.stop(signal.SIGINT), signal.SIGINT)


def test_demo_seeds_once(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, demo=True, roles=("imap",)).start()
    srv.stop()
    inbox = srv.data_dir / "mail" / "example.test" / "demo"
    msgs = list((inbox / "cur").iterdir()) + list((inbox / "new").iterdir())
    assert len([m for m in msgs if m.is_file()]) == 4
    assert "demonstration only" in srv.log()
    code, out = srv.admin("user", "list", "--json")
    assert code == 0 and "demo@example.test" in out
    # a second start does not seed again, and the account keeps its mail
    srv.start()
    srv.stop()
    assert srv.log().count("demonstration only") == 1


def test_no_demo_no_account(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, roles=("imap",)).start()
    srv.stop()
    code, out = srv.admin("user", "list", "--json")
    assert code == 0 and "demo@" not in out
