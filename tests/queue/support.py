"""A trial TestCase base that builds a real queue against loopback servers.

Real parts: the SQLite directory, the Maildir store and delivery agent, the
queue directory, TCP/UDP sockets on 127.0.0.1.  Time is a ``task.Clock``
(the network runs on the real reactor), so retries and expiry are driven by
``self.clock.advance`` and never by waiting.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from mailsuite.config import QueueConfig, UsersConfig
from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.delivery.queue import OutboundQueue
from mailsuite.interfaces import Envelope
from mailsuite.storage.store import MaildirStore
from mailsuite.threads import InlineRunner
from mailsuite.users.directory import SQLiteDirectory
from tests.queue.fakes import MXFactory, MXScript, start_dns

HOSTNAME = "mail.example.test"
MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\n"
    b"Subject: hello\r\nMessage-ID: <m1@example.test>\r\n\r\n"
    b"Hello Bob.\r\n.A line with a dot\r\n"
)


class QueueTestCase(unittest.TestCase):
    """``self.script`` (the MX), ``self.dns_records``, ``make_queue()``, ``submit()``."""

    timeout = 30  # trial: a hang fails fast (the clock is fake, so SMTP timeouts never fire)

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).absolute()
        self.tmp.mkdir(parents=True)
        self.clock = task.Clock()
        self.clock.advance(1_000_000)
        self.directory = SQLiteDirectory(self.tmp / "users.sqlite", UsersConfig())
        self.addCleanup(self.directory.close)
        self.directory.add_domain("example.test")
        self.directory.add_user("alice@example.test", "{PLAIN}x")
        self.store = MaildirStore(self.tmp / "mail", clock=self.clock.seconds)
        self.agent = MaildirDeliveryAgent(self.store)
        self.script = MXScript()
        self.mx_factory = MXFactory(self.script)
        self.mx_port = reactor.listenTCP(0, self.mx_factory, interface="127.0.0.1")
        self.addCleanup(self.mx_port.stopListening)
        self.addCleanup(lambda: self.run_async(self.mx_factory.close_all(reactor)))
        self.dns_records: dict[str, list[Any]] = {}
        self.dns_port = start_dns(reactor, self.dns_records)
        self.addCleanup(self.dns_port.stopListening)
        self.queues: list[OutboundQueue] = []

    def config(self, **overrides: Any) -> QueueConfig:
        base = QueueConfig(
            resolver=f"127.0.0.1:{self.dns_port.getHost().port}",
            mx_port=self.mx_port.getHost().port,
            connect_timeout=5.0,
        )
        return dataclasses.replace(base, **overrides)

    def make_queue(self, **overrides: Any) -> OutboundQueue:
        q = OutboundQueue(
            self.tmp / "queue",
            self.config(**overrides),
            reactor,
            InlineRunner(),
            self.agent,
            self.directory,
            HOSTNAME,
            clock=self.clock,
        )
        self.queues.append(q)
        q.start()
        self.addCleanup(q.stop)
        return q

    def submit(
        self,
        q: OutboundQueue,
        recipients: list[str],
        sender: str = "alice@example.test",
        data: bytes = MESSAGE,
        params: dict[str, str] | None = None,
        rcpt_params: dict[str, dict[str, str]] | None = None,
    ) -> str:
        env = Envelope(sender, list(recipients), params or {}, rcpt_params or {})
        msg = q.begin(env)
        msg.write(data)
        return msg.commit(recipients)

    async def idle(self, q: OutboundQueue) -> None:
        """Let commits arrive (callFromThread), then wait until nothing is due."""
        await task.deferLater(reactor, 0, lambda: None)
        await q.wait_idle()

    def run_async(self, coro: Any) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(coro)

    def inbox(self, address: str) -> list[email.message.EmailMessage]:
        """Messages delivered to ``address``'s INBOX (read from the Maildir files)."""
        local, _, domain = address.partition("@")
        root = self.tmp / "mail" / domain / local
        out = []
        for sub in ("new", "cur"):
            d = root / sub
            if d.is_dir():
                for p in sorted(d.iterdir()):
                    msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                    assert isinstance(msg, email.message.EmailMessage)
                    out.append(msg)
        return out


def dsn_fields(report: email.message.EmailMessage) -> tuple[Any, list[Any]]:
    """(per-message fields, [per-recipient fields]) of a DSN."""
    assert report.get_content_type() == "multipart/report"
    status = report.get_payload()[1]  # type: ignore[index]
    parts = status.get_payload()
    return parts[0], parts[1:]


__all__ = ["HOSTNAME", "MESSAGE", "MXScript", "QueueTestCase", "dsn_fields"]
