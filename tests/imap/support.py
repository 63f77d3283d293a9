"""IMAP unit-test scaffolding: a real Maildir store and SQLite directory on a
temporary directory, an inline runner, a Clock, and a client over StringTransport."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from zope.interface import directlyProvides

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.imap.server import IMAPFactory, IMAPSession
from tests import inprocess
from tests.inprocess import PASSWORD, TLSRecordingTransport

USER = "alice@example.test"


def make_config(tmp: Path, imap: dict[str, Any] | None = None, **auth: Any) -> Config:
    return inprocess.make_config(tmp, "imap.example.test", {"imap": imap or {}}, **auth)


def make_context(tmp: Path, tls: bool = True, **kw: Any) -> ServerContext:
    return inprocess.make_context(tmp, make_config(tmp, **kw), tls=tls)


def add_user(
    ctx: ServerContext,
    address: str = USER,
    password: str = PASSWORD,
    quota_bytes: int = 0,
    quota_messages: int = 0,
) -> None:
    inprocess.add_user(ctx, address, password, quota_bytes, quota_messages)


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
