"""attach(): the queue inside the server's MultiService; stopping mid-delivery."""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet import reactor, task
from twisted.names import dns

from mailsuite.config import Config, QueueConfig
from mailsuite.delivery.queue import OutboundQueue, QueueService, attach
from mailsuite.delivery.queue_store import DELIVERED, PENDING
from mailsuite.interfaces import Envelope
from mailsuite.threads import InlineRunner
from tests.queue.support import QueueTestCase


class _Context:
    """The fields of ServerContext that attach() reads."""

    def __init__(self, config: Config, agent: Any, directory: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.runner = InlineRunner()
        self.agent = agent
        self.directory = directory
        self.queue: Any = None


class ServiceTests(QueueTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dns_records.update(
            {
                "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
                "mx.remote.test": [dns.Record_A("127.0.0.1")],
                "slow.test": [dns.Record_MX(10, b"mx.remote.test")],
            }
        )

    async def test_attach_adds_a_named_service_and_sets_context_queue(self) -> None:
        cfg = Config(queue=self.config()).with_data_dir(str(self.tmp / "data"))
        ctx = _Context(cfg, self.agent, self.directory)
        top = service.MultiService()
        q = attach(ctx, top)
        self.assertIs(ctx.queue, q)
        self.assertIsInstance(top.getServiceNamed("queue"), QueueService)
        self.assertTrue((self.tmp / "data" / "queue" / "env").is_dir())
        top.startService()
        msg = q.begin(Envelope("", ["b@remote.test"]))
        msg.write(b"Subject: x\r\n\r\nx\r\n")
        msg.commit(["b@remote.test"])
        await task.deferLater(reactor, 0, lambda: None)
        await q.wait_idle()
        self.assertEqual(len(self.mx_factory.received), 1)
        await top.stopService()

    async def test_stop_during_delivery_keeps_the_recipient_pending(self) -> None:
        self.script.hang_domains = {"slow.test"}
        seen = []
        self.script.on_data = seen.append
        q = self.make_queue()
        qid = self.submit(q, ["bob@remote.test", "y@slow.test"])
        for _ in range(200):
            if len(seen) == 2:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len(seen), 2)
        await q.stop()
        states = {r.address: r.status for r in q.store.load(qid).recipients}
        self.assertEqual(states, {"bob@remote.test": DELIVERED, "y@slow.test": PENDING})
        lock = q.store.lock(qid)  # released by the stopped runner
        self.assertIsNotNone(lock)
        assert lock is not None
        lock.release()

    async def test_forwarding_alias_goes_out_with_the_original_recipient(self) -> None:
        self.directory.add_alias("fwd@example.test", ["bob@remote.test"])
        self.script.dsn = True
        q = self.make_queue()
        self.submit(q, ["fwd@example.test"], sender="zed@remote.test")
        await self.idle(q)
        [txn] = self.mx_factory.received
        self.assertEqual(txn.recipients, [("bob@remote.test", "ORCPT=rfc822;fwd@example.test")])
        self.assertEqual(q.store.ids(), [])


def test_queue_config_defaults() -> None:
    c = QueueConfig()
    assert (c.mx_port, c.scan_interval, c.retry_schedule[0], c.max_age) == (25, 60.0, 300, 432000)
    assert OutboundQueue.__init__.__code__.co_varnames[1:9] == (
        "queue_dir",
        "config",
        "reactor",
        "runner",
        "agent",
        "directory",
        "hostname",
        "resolver",
    )
