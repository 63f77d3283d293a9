"""Acceptance audit (issue 2, item 4): SIGHUP to the real server re-reads the
certificate files without dropping connections; a broken file keeps the old
certificate and the server keeps running."""

from __future__ import annotations

import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from mailsuite.tls import generate_self_signed
from tests.harness import ServerProcess

pytestmark = pytest.mark.slow


def tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_subject(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tls_context().wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def wait_for_subject(port: int, expected: str) -> str:
    deadline = time.monotonic() + 10
    subject = peer_subject(port)
    while subject != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        subject = peer_subject(port)
    return subject


def test_sighup_reloads_certificate_and_keeps_connections(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, roles=("imaps", "pop3s")).start()
    try:
        assert srv.proc is not None
        port = srv.ports["imaps"]
        assert peer_subject(port) == "CN=mail.example.test"
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        held = tls_context().wrap_socket(raw)
        f = held.makefile("rb")
        assert f.readline().startswith(b"* OK")
        tls_dir = srv.data_dir / "tls"
        generate_self_signed(
            "renewed.example.test", tls_dir / "selfsigned.crt", tls_dir / "selfsigned.key"
        )
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_subject(port, "CN=renewed.example.test") == "CN=renewed.example.test"
        assert peer_subject(srv.ports["pop3s"]) == "CN=renewed.example.test"
        held.sendall(b"a NOOP\r\n")
        assert f.readline().startswith(b"a OK")  # the old connection was not dropped
        # a broken file: the old certificate stays, the server keeps serving
        (tls_dir / "selfsigned.key").write_text("garbage")
        srv.proc.send_signal(signal.SIGHUP)
        held.sendall(b"b NOOP\r\n")
        assert f.readline().startswith(b"b OK")
        assert peer_subject(port) == "CN=renewed.example.test"
        held.close()
        assert srv.proc.poll() is None
    finally:
        srv.stop()
    assert "Traceback" not in srv.log()
