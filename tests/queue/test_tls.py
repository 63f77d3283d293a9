"""STARTTLS policy of the relay: opportunistic, required + verified, smarthost AUTH."""

from __future__ import annotations

from pathlib import Path

from twisted.names import dns

from mailsuite.delivery.queue_store import PENDING
from mailsuite.tls import generate_self_signed, load_options
from tests.queue.support import QueueTestCase, dsn_fields


def _cert(tmp: Path, name: str) -> tuple[Path, object]:
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    generate_self_signed(name, cert, key)
    return cert, load_options(cert, key)


class TLSTests(QueueTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dns_records.update(
            {
                "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
                "mx.remote.test": [dns.Record_A("127.0.0.1")],
                "relay.test": [dns.Record_A("127.0.0.1")],
            }
        )
        self.cert, self.server_tls = _cert(self.tmp, "mx.remote.test")

    async def test_required_tls_not_offered_defers(self) -> None:
        q = self.make_queue(require_tls_domains=("remote.test",))
        qid = self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(self.mx_factory.received, [])
        [rcpt] = q.store.load(qid).recipients
        self.assertEqual(rcpt.status, PENDING)
        self.assertEqual(rcpt.status_code, "4.7.4")
        self.assertIn("TLS is required", rcpt.diagnostic)

    async def test_required_tls_verified(self) -> None:
        self.script.tls_options = self.server_tls
        q = self.make_queue(require_tls_domains=("remote.test",), tls_ca_file=str(self.cert))
        self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertTrue(txn.tls)
        self.assertEqual(q.store.ids(), [])

    async def test_required_tls_with_untrusted_certificate_defers(self) -> None:
        self.script.tls_options = self.server_tls
        other, _opts = _cert(self.tmp, "someone.else.test")
        q = self.make_queue(require_tls_domains=("remote.test",), tls_ca_file=str(other))
        qid = self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(self.mx_factory.received, [])
        [rcpt] = q.store.load(qid).recipients
        self.assertEqual(rcpt.status, PENDING)
        self.assertTrue(rcpt.status_code.startswith("4."))

    async def test_opportunistic_tls_accepts_any_certificate(self) -> None:
        self.script.tls_options = self.server_tls  # self-signed, not trusted by anyone
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertTrue(txn.tls)

    async def test_smarthost_with_auth_over_verified_tls(self) -> None:
        cert, opts = _cert(self.tmp, "relay.test")
        self.script.tls_options = opts
        self.script.auth = ("relayuser", "s3cret")
        pw = self.tmp / "relay.pw"
        pw.write_text("s3cret\n")
        q = self.make_queue(
            smarthost=f"relay.test:{self.mx_port.getHost().port}",
            smarthost_username="relayuser",
            smarthost_password_file=str(pw),
            tls_ca_file=str(cert),
        )
        self.submit(q, ["bob@remote.test", "x@elsewhere.test"])
        await self.idle(q)
        [txn] = self.mx_factory.received  # one transaction for every domain
        self.assertEqual(txn.auth, "relayuser")
        self.assertTrue(txn.tls)
        self.assertEqual(len(txn.recipients), 2)

    async def test_smarthost_auth_failure_defers(self) -> None:
        cert, opts = _cert(self.tmp, "relay.test")
        self.script.tls_options = opts
        self.script.auth = ("relayuser", "other")
        pw = self.tmp / "relay.pw"
        pw.write_text("wrong")
        q = self.make_queue(
            smarthost=f"relay.test:{self.mx_port.getHost().port}",
            smarthost_username="relayuser",
            smarthost_password_file=str(pw),
            tls_ca_file=str(cert),
        )
        qid = self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        [rcpt] = q.store.load(qid).recipients
        self.assertEqual(rcpt.status, PENDING)
        self.assertIn("Authentication", rcpt.diagnostic)
        self.assertNotIn("wrong", rcpt.diagnostic)
        self.assertEqual(self.inbox("alice@example.test"), [])

    async def test_message_too_big_for_the_remote_bounces(self) -> None:
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"], data=b"Subject: big\r\n\r\n" + b"x" * 998 * 10_100)
        await self.idle(q)
        _m, [r] = dsn_fields(self.inbox("alice@example.test")[0])
        self.assertEqual(r["Status"], "5.3.4")

    async def test_broken_opportunistic_tls_falls_back_to_plaintext(self) -> None:
        self.script.broken_tls = True
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertFalse(txn.tls)
        self.assertEqual(q.store.ids(), [])
