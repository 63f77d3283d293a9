"""Test scaffolding for the POP3 unit tests: a real store and directory on a
temporary directory, an inline runner, a Clock, and a client over StringTransport."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.pop3.server import POP3Factory, POP3Server
from mailsuite.protocol.lines import ConnectionLimiter
from mailsuite.storage.changes import ChangeHub
from mailsuite.threads import InlineRunner

PASSWORD = "correct horse"


class TestReactor(Clock):
    """A Clock that also runs callFromThread at once (for the change hub)."""

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class FakeTLS:
    """Stands in for TLSContexts where only "TLS is configured" matters."""

    def server_options(self) -> str:
        return "tls-options"


class TLSRecordingTransport(StringTransport):
    """StringTransport that records startTLS (STLS tests)."""

    tls_started: Any = None

    def startTLS(self, options: Any) -> None:
        self.tls_started = options


def make_config(tmp: Path, pop3: dict[str, Any] | None = None, **auth: Any) -> Config:
    base = Config()
    cheap = {
        "argon2_time_cost": 1,
        "argon2_memory_cost": 8,
        "argon2_parallelism": 1,
        "throttle_base_delay": 0.0,
    }
    cheap.update(auth)
    return dataclasses.replace(
        base,
        server=dataclasses.replace(base.server, data_dir=str(tmp), hostname="pop.example.test"),
        auth=dataclasses.replace(base.auth, **cheap),
        pop3=dataclasses.replace(base.pop3, **(pop3 or {})),
    )


def make_context(tmp: Path, tls: bool = True, **kw: Any) -> ServerContext:
    from mailsuite.storage.store import MaildirStore
    from mailsuite.users.auth import DirectoryAuthenticator
    from mailsuite.users.directory import SQLiteDirectory

    tmp.mkdir(parents=True, exist_ok=True)
    config = make_config(tmp, **kw)
    reactor = TestReactor()
    runner = InlineRunner()
    hub = ChangeHub(reactor)
    store = MaildirStore(tmp / "mail", hub=hub)
    directory = SQLiteDirectory(tmp / "users.sqlite", config.users)
    auth = DirectoryAuthenticator(directory, runner, reactor, config.auth)
    return ServerContext(
        reactor=reactor,
        config=config,
        runner=runner,
        store=store,
        directory=directory,
        agent=None,  # POP3 never delivers
        auth=auth,
        hub=hub,
        tls=FakeTLS() if tls else None,
        limiter=ConnectionLimiter(100, 100),
    )


def add_user(ctx: ServerContext, address: str, password: str = PASSWORD) -> None:
    directory: Any = ctx.directory
    auth: Any = ctx.auth
    domain = address.rsplit("@", 1)[1]
    if not directory.is_local_domain(domain):
        directory.add_domain(domain)
    directory.add_user(address, auth.hasher.hash(password))


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
