"""IMAP unit-test scaffolding: a real Maildir store and SQLite directory on a
temporary directory, an inline runner, a Clock, and a client over StringTransport."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.imap.server import IMAPFactory, IMAPSession
from mailsuite.protocol.lines import ConnectionLimiter
from mailsuite.storage.changes import ChangeHub
from mailsuite.threads import InlineRunner

PASSWORD = "correct horse"
USER = "alice@example.test"


class TestReactor(Clock):
    """A Clock that also runs callFromThread at once (for the change hub)."""

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class FakeTLS:
    def server_options(self) -> str:
        return "tls-options"


class TLSRecordingTransport(StringTransport):
    tls_started: Any = None

    def startTLS(self, options: Any) -> None:
        self.tls_started = options


def make_config(tmp: Path, imap: dict[str, Any] | None = None, **auth: Any) -> Config:
    base = Config()
    cheap: dict[str, Any] = {
        "argon2_time_cost": 1,
        "argon2_memory_cost": 8,
        "argon2_parallelism": 1,
        "throttle_base_delay": 0.0,
    }
    cheap.update(auth)
    return dataclasses.replace(
        base,
        server=dataclasses.replace(base.server, data_dir=str(tmp), hostname="imap.example.test"),
        auth=dataclasses.replace(base.auth, **cheap),
        imap=dataclasses.replace(base.imap, **(imap or {})),
    )


def make_context(tmp: Path, tls: bool = True, **kw: Any) -> ServerContext:
    from mailsuite.storage.store import MaildirStore
    from mailsuite.users.auth import DirectoryAuthenticator
    from mailsuite.users.directory import SQLiteDirectory

    config = make_config(tmp, **kw)
    reactor = TestReactor()
    runner = InlineRunner()
    hub = ChangeHub(reactor)
    directory = SQLiteDirectory(tmp / "users.sqlite", config.users)

    def quota_lookup(address: str) -> tuple[int, int]:
        user = directory.get_user(address)
        return (user.quota_bytes, user.quota_messages) if user else (0, 0)

    store = MaildirStore(tmp / "mail", hub=hub, quota_lookup=quota_lookup)
    auth = DirectoryAuthenticator(directory, runner, reactor, config.auth)
    return ServerContext(
        reactor=reactor,
        config=config,
        runner=runner,
        store=store,
        directory=directory,
        agent=None,
        auth=auth,
        hub=hub,
        tls=FakeTLS() if tls else None,
        limiter=ConnectionLimiter(100, 100),
    )


def add_user(
    ctx: ServerContext,
    address: str = USER,
    password: str = PASSWORD,
    quota_bytes: int = 0,
    quota_messages: int = 0,
) -> None:
    directory: Any = ctx.directory
    auth: Any = ctx.auth
    domain = address.rsplit("@", 1)[1]
    if not directory.is_local_domain(domain):
        directory.add_domain(domain)
    directory.add_user(
        address, auth.hasher.hash(password), quota_bytes=quota_bytes, quota_messages=quota_messages
    )


def deliver(
    ctx: ServerContext,
    data: bytes,
    address: str = USER,
    folder: str = "INBOX",
    flags: tuple[str, ...] = (),
) -> int:
    """Append a message through the real store (as another session would); its UID."""
    account = ctx.store.account(address)
    account.ensure_created()
    box = account.open(folder)
    return int(box.append(io.BytesIO(data), flags))


def fill(ctx: ServerContext, n: int, address: str = USER) -> None:
    """``n`` messages written straight into ``new/`` (like an outside MDA, no
    fsync per message), then one sync assigns UIDs 1..n in order."""
    account = ctx.store.account(address)
    account.ensure_created()
    new = ctx.store.account_path(address) / "new"  # type: ignore[attr-defined]
    for i in range(n):
        (new / f"{1700000000 + i}.M{i}P1.fill").write_bytes(message(i))
    account.open("INBOX").sync()


def message(n: int, body: bytes = b"") -> bytes:
    return (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: message %d\r\n"
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n"
        % n
        + (body or b"Body of message %d\r\n" % n)
    )


def claim_recent(ctx: ServerContext, folder: str = "INBOX") -> None:
    """A session selects ``folder`` and leaves: later sessions see no \\Recent."""
    c = Client(ctx)
    c.login()
    c.ok(f"SELECT {folder}")
    c.ok("LOGOUT")


class Client:
    """An IMAPSession on a StringTransport; ``cmd`` returns what the server wrote."""

    def __init__(
        self, ctx: ServerContext, tls: bool = True, role: str = "imap", implicit_tls: bool = False
    ) -> None:
        self.factory = IMAPFactory(ctx, role, implicit_tls)
        self.ctx = ctx
        addr = IPv4Address("TCP", "192.0.2.7", 40000)
        proto = self.factory.buildProtocol(addr)
        assert isinstance(proto, IMAPSession)
        self.proto = proto
        self.transport = TLSRecordingTransport(peerAddress=addr)
        if tls:
            directlyProvides(self.transport, ISSLTransport)
        proto.makeConnection(self.transport)
        self.greeting = self.read()
        self.n = 0

    def read(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return bytes(data)

    def raw(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode()
        self.proto.dataReceived(data)
        self.ctx.reactor.advance(0)  # type: ignore[attr-defined]
        return self.read()

    def cmd(self, text: bytes | str) -> bytes:
        """Send ``tN text`` and return everything written in response."""
        self.n += 1
        if isinstance(text, str):
            text = text.encode()
        return self.raw(b"t%d " % self.n + text + b"\r\n")

    def ok(self, text: bytes | str) -> bytes:
        out = self.cmd(text)
        assert re.search(rb"(^|\r\n)t%d OK" % self.n, out), out
        return out

    def tagged(self, out: bytes) -> bytes:
        m = re.search(rb"(?:^|\r\n)(t%d [^\r\n]*)\r\n" % self.n, out)
        assert m, out
        return m.group(1)

    def login(self, user: str = USER, password: str = PASSWORD) -> bytes:
        return self.ok(f'LOGIN {user} "{password}"')

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting) or self.proto.disconnecting
