"""The queue runner end to end over loopback: a remote MX, a DNS server, the
real directory, Maildir store and delivery agent; time from a task.Clock."""

from __future__ import annotations

from twisted.names import dns

from mailsuite.delivery.queue_store import PENDING
from tests.queue.support import MESSAGE, QueueTestCase, dsn_fields

REMOTE = {
    "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
    "mx.remote.test": [dns.Record_A("127.0.0.1")],
}


class DeliveryTests(QueueTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dns_records.update(REMOTE)

    async def test_one_transaction_per_domain(self) -> None:
        q = self.make_queue()
        self.submit(q, ["bob@remote.test", "carol@remote.test"])
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertEqual(txn.mail_from, "alice@example.test")
        self.assertEqual([a for a, _p in txn.recipients], ["bob@remote.test", "carol@remote.test"])
        self.assertEqual(txn.data, MESSAGE)  # dot-stuffed on the wire, intact here
        self.assertEqual(txn.helo, "mail.example.test")
        self.assertIn("SIZE=", txn.mail_params)
        self.assertEqual(q.store.ids(), [])
        self.assertEqual(self.inbox("alice@example.test"), [])  # no report wanted

    async def test_temporary_failure_then_success(self) -> None:
        self.script.data_end = ["451 4.3.0 Try again later"]
        q = self.make_queue()
        qid = self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(self.mx_factory.received, [])
        entry = q.store.load(qid)
        [rcpt] = entry.recipients
        self.assertEqual(rcpt.status, PENDING)
        self.assertIn("451 4.3.0 Try again later", rcpt.diagnostic)
        self.assertEqual(entry.attempts, 1)
        self.assertEqual(entry.next_attempt, self.clock.seconds() + 300)
        self.clock.advance(299)
        await self.idle(q)
        self.assertEqual(q.store.load(qid).attempts, 1)  # not due yet
        self.clock.advance(1)
        await self.idle(q)
        self.assertEqual(len(self.mx_factory.received), 1)
        self.assertEqual(q.store.ids(), [])
        self.assertEqual(self.inbox("alice@example.test"), [])

    async def test_permanent_failure_bounces_with_report(self) -> None:
        self.script.rcpt["bob@remote.test"] = "550 5.1.1 <bob@remote.test>: no such user"
        q = self.make_queue()
        self.submit(
            q,
            ["bob@remote.test", "carol@remote.test"],
            params={"ENVID": "env+2B42", "RET": "FULL"},
            rcpt_params={"bob@remote.test": {"ORCPT": "rfc822;Bob+2Bx@remote.test"}},
        )
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertEqual([a for a, _p in txn.recipients], ["carol@remote.test"])
        self.assertEqual(q.store.ids(), [])
        [report] = self.inbox("alice@example.test")
        self.assertEqual(report["To"], "alice@example.test")
        self.assertIn("MAILER-DAEMON@mail.example.test", report["From"])
        per_msg, [bob] = dsn_fields(report)
        self.assertEqual(per_msg["Reporting-MTA"], "dns;mail.example.test")
        self.assertEqual(per_msg["Original-Envelope-Id"], "env+42")
        self.assertEqual(bob["Final-Recipient"], "rfc822;bob@remote.test")
        self.assertEqual(bob["Original-Recipient"], "rfc822;Bob+x@remote.test")
        self.assertEqual(bob["Action"], "failed")
        self.assertEqual(bob["Status"], "5.1.1")
        self.assertEqual(bob["Remote-MTA"], "dns;mx.remote.test")
        self.assertEqual(bob["Diagnostic-Code"], "smtp; 550 5.1.1 <bob@remote.test>: no such user")
        returned = report.get_payload()[2]  # type: ignore[index]
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        self.assertEqual(returned.get_payload()[0]["Subject"], "hello")
        self.assertNotIn("carol", report.get_payload()[1].as_string())  # type: ignore[index]

    async def test_expiry_with_fake_clock_and_delay_notice(self) -> None:
        self.script.rcpt["bob@remote.test"] = "450 4.2.1 Mailbox busy"
        q = self.make_queue(delay_notice_after=3600, max_age=4 * 3600)
        qid = self.submit(q, ["bob@remote.test"], params={"RET": "HDRS"})
        await self.idle(q)
        for step in (300, 600, 1200, 2400):  # retries 2..5; the delay notice after an hour
            self.clock.advance(step)
            await self.idle(q)
        self.assertEqual(q.store.load(qid).attempts, 5)
        [delay] = self.inbox("alice@example.test")
        self.assertTrue(delay["Subject"].startswith("Delayed Mail"))
        _m, [d] = dsn_fields(delay)
        self.assertEqual((d["Action"], d["Status"]), ("delayed", "4.2.1"))
        self.assertIsNotNone(d["Will-Retry-Until"])
        self.clock.advance(3600)  # hourly from now on, until max_age
        await self.idle(q)
        self.clock.advance(3600)
        await self.idle(q)
        self.assertEqual(len(self.inbox("alice@example.test")), 1)  # one delay notice only
        self.clock.advance(4 * 3600)
        await self.idle(q)
        self.assertEqual(q.store.ids(), [])
        bounce = self.inbox("alice@example.test")[1]
        self.assertTrue(bounce["Subject"].startswith("Undelivered Mail"))
        _m, [b] = dsn_fields(bounce)
        self.assertEqual((b["Action"], b["Status"]), ("failed", "4.4.7"))
        self.assertIn("450 4.2.1 Mailbox busy", b["Diagnostic-Code"])
        returned = bounce.get_payload()[2]  # type: ignore[index]
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")  # RET=HDRS
        self.assertEqual(self.mx_factory.received, [])

    async def test_null_mx_fails_permanently(self) -> None:
        self.dns_records["nomail.test"] = [dns.Record_MX(0, b".")]
        q = self.make_queue()
        self.submit(q, ["x@nomail.test"])
        await self.idle(q)
        self.assertEqual(q.store.ids(), [])
        [report] = self.inbox("alice@example.test")
        _m, [r] = dsn_fields(report)
        self.assertEqual((r["Action"], r["Status"]), ("failed", "5.1.10"))
        self.assertEqual(self.mx_factory.received, [])

    async def test_nonexistent_domain_fails_permanently(self) -> None:
        q = self.make_queue()
        self.submit(q, ["x@nowhere.test"])
        await self.idle(q)
        _m, [r] = dsn_fields(self.inbox("alice@example.test")[0])
        self.assertEqual(r["Status"], "5.1.2")

    async def test_implicit_mx_uses_the_address_record(self) -> None:
        self.dns_records["plain.test"] = [dns.Record_A("127.0.0.1")]
        q = self.make_queue()
        self.submit(q, ["x@plain.test"])
        await self.idle(q)
        self.assertEqual(len(self.mx_factory.received), 1)

    async def test_next_mx_is_tried_when_the_first_is_down(self) -> None:
        self.dns_records["remote.test"] = [
            dns.Record_MX(5, b"down.remote.test"),
            dns.Record_MX(10, b"mx.remote.test"),
        ]
        self.dns_records["down.remote.test"] = [dns.Record_A("127.0.0.2")]  # nothing listens
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(len(self.mx_factory.received), 1)
        self.assertEqual(q.store.ids(), [])

    async def test_null_sender_is_never_bounced(self) -> None:
        self.script.rcpt["bob@remote.test"] = "550 5.1.1 no such user"
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"], sender="")
        await self.idle(q)
        self.assertEqual(q.store.ids(), [])
        self.assertEqual(self.inbox("alice@example.test"), [])

    async def test_bounce_to_a_remote_sender_goes_through_the_queue(self) -> None:
        self.script.rcpt["bob@remote.test"] = "550 5.1.1 no such user"
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"], sender="zed@remote.test")
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertEqual(txn.mail_from, "")
        self.assertEqual([a for a, _p in txn.recipients], ["zed@remote.test"])
        self.assertIn(b"report-type=delivery-status", txn.data)
        self.assertEqual(q.store.ids(), [])

    async def test_local_recipients_go_to_the_agent(self) -> None:
        q = self.make_queue()
        self.submit(q, ["alice@example.test", "bob@remote.test"], sender="zed@remote.test")
        await self.idle(q)
        [mine] = self.inbox("alice@example.test")
        self.assertEqual(mine["Subject"], "hello")
        self.assertEqual(len(self.mx_factory.received), 1)
        self.assertEqual(q.store.ids(), [])

    async def test_unknown_local_recipient_bounces(self) -> None:
        q = self.make_queue()
        self.submit(q, ["nobody@example.test"])
        await self.idle(q)
        _m, [r] = dsn_fields(self.inbox("alice@example.test")[0])
        self.assertEqual((r["Action"], r["Status"]), ("failed", "5.1.1"))

    async def test_dsn_parameters_are_passed_to_a_dsn_server(self) -> None:
        self.script.dsn = True
        q = self.make_queue()
        self.submit(
            q,
            ["bob@remote.test"],
            params={"RET": "HDRS", "ENVID": "e1"},
            rcpt_params={
                "bob@remote.test": {"NOTIFY": "SUCCESS", "ORCPT": "rfc822;bob@remote.test"}
            },
        )
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertIn("RET=HDRS", txn.mail_params)
        self.assertIn("ENVID=e1", txn.mail_params)
        self.assertEqual(txn.recipients[0][1], "NOTIFY=SUCCESS ORCPT=rfc822;bob@remote.test")
        self.assertEqual(self.inbox("alice@example.test"), [])  # the next hop reports success

    async def test_success_notice_when_relayed_to_a_non_dsn_server(self) -> None:
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"], rcpt_params={"bob@remote.test": {"NOTIFY": "SUCCESS"}})
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertEqual(txn.recipients[0][1], "")  # not offered DSN: no parameters
        [note] = self.inbox("alice@example.test")
        _m, [r] = dsn_fields(note)
        self.assertEqual(r["Action"], "relayed")

    async def test_notify_never_suppresses_the_bounce(self) -> None:
        self.script.rcpt["bob@remote.test"] = "550 5.1.1 no such user"
        q = self.make_queue()
        self.submit(q, ["bob@remote.test"], rcpt_params={"bob@remote.test": {"NOTIFY": "NEVER"}})
        await self.idle(q)
        self.assertEqual(q.store.ids(), [])
        self.assertEqual(self.inbox("alice@example.test"), [])

    async def test_per_destination_limit(self) -> None:
        peak = 0

        def on_data(txn: object) -> None:
            nonlocal peak
            peak = max(peak, len(self.mx_factory.open))

        self.script.on_data = on_data
        q = self.make_queue(max_per_destination=1)
        for _ in range(3):
            self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(len(self.mx_factory.received), 3)
        self.assertEqual(peak, 1)
