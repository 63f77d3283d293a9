"""Test scaffolding for the POP3 unit tests: a real store and directory on a
temporary directory, an inline runner, a Clock, and a client over StringTransport."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.pop3.server import POP3Factory, POP3Server
from tests import inprocess
from tests.inprocess import PASSWORD, FakeTLS, TestReactor, TLSRecordingTransport

__all__ = ["PASSWORD", "FakeTLS", "TLSRecordingTransport", "TestReactor"]


def make_config(tmp: Path, pop3: dict[str, Any] | None = None, **auth: Any) -> Config:
    return inprocess.make_config(tmp, "pop.example.test", {"pop3": pop3 or {}}, **auth)


def make_context(tmp: Path, tls: bool = True, **kw: Any) -> ServerContext:
    return inprocess.make_context(tmp, make_config(tmp, **kw), tls=tls)


def add_user(ctx: ServerContext, address: str, password: str = PASSWORD) -> None:
    inprocess.add_user(ctx, address, password)


def deliver(ctx: ServerContext, address: str, data: bytes) -> int:
    """Append a message to INBOX through the real store; returns its UID."""
    account = ctx.store.account(address)
    account.ensure_created()
    box = account.open("INBOX")
    uid = box.append(io.BytesIO(data))
    return uid


def message(n: int, body: bytes = b"") -> bytes:
    return b"From: a@example.test\r\nTo: b@example.test\r\nSubject: message %d\r\n\r\n" % n + (
        body or b"Body of message %d\r\n.dot line\r\n" % n
    )


class Client:
    """A POP3Server on a StringTransport; ``send`` returns what the server wrote."""

    def __init__(
        self, factory: POP3Factory, tls: bool = False, transport: StringTransport | None = None
    ) -> None:
        self.factory = factory
        addr = IPv4Address("TCP", "192.0.2.7", 40000)
        proto = factory.buildProtocol(addr)
        assert isinstance(proto, POP3Server)
        self.proto = proto
        self.transport = transport or StringTransport(peerAddress=addr)
        if tls:
            directlyProvides(self.transport, ISSLTransport)
        proto.makeConnection(self.transport)
        self.greeting = self.read()

    def read(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode()
        self.proto.dataReceived(data + b"\r\n")
        self.factory.context.reactor.advance(0)  # zero-delay throttle replies
        return self.read()

    def lines(self, data: bytes | str) -> list[bytes]:
        return self.send(data).split(b"\r\n")[:-1]

    def login(self, user: str, password: str = PASSWORD) -> bytes:
        assert self.send(f"USER {user}").startswith(b"+OK")
        return self.send(f"PASS {password}")

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting) or self.proto.disconnecting

    def drop(self) -> None:
        """The connection is lost (no QUIT)."""
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.proto.connectionLost(Failure(ConnectionLost()))
