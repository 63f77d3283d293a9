"""TLS contexts: self-signed generation, reuse, protocol versions, reload."""

from __future__ import annotations

import os
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor, threads
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial import unittest

from mailsuite.config import TLSConfig
from mailsuite.errors import ConfigError
from mailsuite.tls import TLSContexts, generate_self_signed


class Greeter(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"hello\r\n")


def client_handshake(port: int, version: ssl.TLSVersion) -> str:
    """Connect with exactly ``version``; returns the negotiated version or raises."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            assert s.recv(7) == b"hello\r\n"
            return str(s.version())


class TLSContextTests(unittest.TestCase):
    def setUp(self) -> None:
        self.data = Path(self.mktemp())
        self.data.mkdir()

    def test_self_signed_generated_once(self) -> None:
        TLSContexts(TLSConfig(), "mail.example.test", self.data)
        key = self.data / "tls" / "selfsigned.key"
        crt = self.data / "tls" / "selfsigned.crt"
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        before = crt.read_bytes()
        TLSContexts(TLSConfig(), "mail.example.test", self.data)
        self.assertEqual(crt.read_bytes(), before)

    def test_configured_files_and_errors(self) -> None:
        crt, key = self.data / "a.crt", self.data / "a.key"
        generate_self_signed("x.test", crt, key)
        TLSContexts(TLSConfig(certificate=str(crt), private_key=str(key)), "x", self.data)
        with self.assertRaises(ConfigError):
            TLSContexts(TLSConfig(certificate=str(crt)), "x", self.data)
        with self.assertRaises(ConfigError) as e:
            TLSContexts(
                TLSConfig(certificate=str(self.data / "nope"), private_key=str(key)),
                "x",
                self.data,
            )
        self.assertIn("nope", str(e.exception))
        bad = self.data / "bad.crt"
        bad.write_text("not pem")
        with self.assertRaises(ConfigError):
            TLSContexts(TLSConfig(certificate=str(bad), private_key=str(key)), "x", self.data)

    def _listen(self, tls: TLSContexts) -> int:
        factory = TLSMemoryBIOFactory(
            tls.server_options(), False, protocol.Factory.forProtocol(Greeter)
        )
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    @defer.inlineCallbacks
    def test_versions(self) -> Any:
        port = self._listen(TLSContexts(TLSConfig(), "localhost", self.data))
        v12 = yield threads.deferToThread(client_handshake, port, ssl.TLSVersion.TLSv1_2)
        self.assertEqual(v12, "TLSv1.2")
        v13 = yield threads.deferToThread(client_handshake, port, ssl.TLSVersion.TLSv1_3)
        self.assertEqual(v13, "TLSv1.3")
        try:
            yield threads.deferToThread(client_handshake, port, ssl.TLSVersion.TLSv1_1)
        except (ssl.SSLError, OSError):
            pass
        else:
            self.fail("TLS 1.1 was accepted")

    @defer.inlineCallbacks
    def test_reload_keeps_serving_new_certificate(self) -> Any:
        tls = TLSContexts(TLSConfig(), "localhost", self.data)
        port = self._listen(tls)
        crt, key = tls.cert_file, tls.key_file
        generate_self_signed("renewed.test", crt, key)
        self.assertTrue(tls.reload())

        def peer_cn() -> str:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw) as s:
                    der = s.getpeercert(binary_form=True)
            from cryptography import x509

            cert = x509.load_der_x509_certificate(der)
            return str(cert.subject.rfc4514_string())

        cn = yield threads.deferToThread(peer_cn)
        self.assertEqual(cn, "CN=renewed.test")
        key.write_text("garbage")
        self.assertFalse(tls.reload())  # old certificate stays
        cn = yield threads.deferToThread(peer_cn)
        self.assertEqual(cn, "CN=renewed.test")
