"""Loopback stand-ins for the internet: a remote MX (SMTP server) and a DNS server.

Both are real Twisted servers on 127.0.0.1 (port 0).  :class:`RemoteMX`
records every transaction it accepts and is scripted per test: replies to
RCPT by address, successive replies to the end of DATA, STARTTLS with a
given certificate, AUTH PLAIN/LOGIN, the DSN extension, and "hang after
DATA" for crash tests.  :class:`ZoneResolver` answers from a dict and is
served by ``twisted.names.server``.

Run as a script (``python fakes.py STATE_DIR``) it starts both servers for a
subprocess test: ports go to ``STATE_DIR/ports.json``, each transaction to
``STATE_DIR/received.jsonl``, and ``STATE_DIR/hang`` (if it exists) lists
domains whose DATA is never answered; ``reject@a.test`` and ``reject@b.test``
are refused with 550.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol
from twisted.names import common, dns, error, server
from twisted.protocols.basic import LineReceiver


@dataclass
class Transaction:
    mail_from: str
    mail_params: str
    recipients: list[tuple[str, str]]
    data: bytes
    tls: bool
    auth: str
    helo: str


@dataclass
class MXScript:
    """What the remote MX answers."""

    greeting: str = "220 mx.remote.test ESMTP ready"
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_end: list[str] = field(default_factory=list)  # consumed one per message
    mail: str = "250 2.1.0 Ok"
    tls_options: Any = None  # server TLS options: offers STARTTLS when set
    auth: tuple[str, str] | None = None
    dsn: bool = False
    hang_domains: set[str] = field(default_factory=set)
    broken_tls: bool = False  # offer STARTTLS, answer 220, then speak plaintext
    on_data: Any = None  # callable(Transaction) after the data arrived


class MXProtocol(LineReceiver):
    delimiter = b"\r\n"
    MAX_LENGTH = 100_000

    def connectionMade(self) -> None:
        self.factory.open.add(self)  # type: ignore[attr-defined]
        self.s: MXScript = self.factory.script  # type: ignore[attr-defined]
        self.tls = False
        self.auth_user = ""
        self.helo = ""
        self._reset()
        self._auth_state: list[str] | None = None
        self.reply(self.s.greeting)

    fake_tls = False

    def dataReceived(self, data: bytes) -> None:
        if self.fake_tls:
            self.transport.write(b"this is no TLS handshake\r\n" * 4)  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        super().dataReceived(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.open.discard(self)  # type: ignore[attr-defined]

    def _reset(self) -> None:
        self.mail_from: str | None = None
        self.mail_params = ""
        self.rcpts: list[tuple[str, str]] = []
        self.data: list[bytes] | None = None

    def reply(self, text: str) -> None:
        self.sendLine(text.encode())

    def lineReceived(self, line: bytes) -> None:
        if self.data is not None:
            return self._data_line(line)
        if self._auth_state is not None:
            return self._auth_line(line)
        text = line.decode("utf-8", "replace")
        verb, _, arg = text.partition(" ")
        handler = getattr(self, "do_" + verb.upper(), None)
        if handler is None:
            self.reply("500 5.5.1 unknown command")
        else:
            handler(arg)

    def do_EHLO(self, arg: str) -> None:
        self.helo = arg
        ext = ["250-mx.remote.test", "250-PIPELINING", "250-SIZE 10000000", "250-8BITMIME"]
        if (self.s.tls_options is not None or self.s.broken_tls) and not self.tls:
            ext.append("250-STARTTLS")
        if self.s.auth and self.tls:
            ext.append("250-AUTH PLAIN LOGIN")
        if self.s.dsn:
            ext.append("250-DSN")
        ext.append("250 SMTPUTF8")
        for line in ext:
            self.reply(line)

    def do_HELO(self, arg: str) -> None:
        self.reply("250 mx.remote.test")

    def do_STARTTLS(self, arg: str) -> None:
        self.reply("220 2.0.0 go ahead")
        if self.s.broken_tls:
            self.fake_tls = True  # answer the ClientHello with garbage
            return
        self.transport.startTLS(self.s.tls_options)  # type: ignore[union-attr]
        self.tls = True
        self._reset()

    def do_AUTH(self, arg: str) -> None:
        mech, _, initial = arg.partition(" ")
        if mech.upper() == "PLAIN" and initial:
            self._check_plain(initial)
        elif mech.upper() == "LOGIN":
            self._auth_state = []
            self.reply("334 VXNlcm5hbWU6")
        else:
            self.reply("504 5.5.4 unsupported")

    def _check_plain(self, token: str) -> None:
        _authz, user, password = base64.b64decode(token).decode().split("\0")
        self._auth_result(user, password)

    def _auth_line(self, line: bytes) -> None:
        assert self._auth_state is not None
        self._auth_state.append(base64.b64decode(line).decode())
        if len(self._auth_state) == 1:
            self.reply("334 UGFzc3dvcmQ6")
            return
        user, password = self._auth_state
        self._auth_state = None
        self._auth_result(user, password)

    def _auth_result(self, user: str, password: str) -> None:
        if (user, password) == self.s.auth:
            self.auth_user = user
            self.reply("235 2.7.0 ok")
        else:
            self.reply("535 5.7.8 bad credentials")

    def do_MAIL(self, arg: str) -> None:
        addr, _, params = arg[5:].partition(">")
        if not self.s.mail.startswith("2"):
            self.reply(self.s.mail)
            return
        self.mail_from = addr.lstrip("<")
        self.mail_params = params.strip()
        self.reply(self.s.mail)

    def do_RCPT(self, arg: str) -> None:
        addr, _, params = arg[3:].partition(">")
        addr = addr.lstrip("<")
        answer = self.s.rcpt.get(addr, "250 2.1.5 Ok")
        if answer.startswith("2"):
            self.rcpts.append((addr, params.strip()))
        self.reply(answer)

    def do_DATA(self, arg: str) -> None:
        if not self.rcpts:
            self.reply("554 5.5.1 no valid recipients")
            return
        self.data = []
        self.reply("354 go ahead")

    def do_RSET(self, arg: str) -> None:
        self._reset()
        self.reply("250 Ok")

    def do_NOOP(self, arg: str) -> None:
        self.reply("250 Ok")

    def do_QUIT(self, arg: str) -> None:
        self.reply("221 bye")
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _data_line(self, line: bytes) -> None:
        assert self.data is not None
        if line != b".":
            self.data.append(line[1:] if line.startswith(b".") else line)
            return
        data = b"".join(part + b"\r\n" for part in self.data)
        txn = Transaction(
            self.mail_from or "",
            self.mail_params,
            self.rcpts,
            data,
            self.tls,
            self.auth_user,
            self.helo,
        )
        self._reset()
        domains = {a.rpartition("@")[2] for a, _p in txn.recipients}
        self.factory.received.append(txn)  # type: ignore[attr-defined]
        if self.s.on_data is not None:
            self.s.on_data(txn)
        if domains & self.s.hang_domains:
            return  # never answer
        answer = self.s.data_end.pop(0) if self.s.data_end else "250 2.0.0 Ok: queued"
        if not answer.startswith("2"):
            self.factory.received.pop()  # type: ignore[attr-defined]
        self.reply(answer)


class MXFactory(protocol.ServerFactory):
    protocol = MXProtocol

    def __init__(self, script: MXScript) -> None:
        self.script = script
        self.received: list[Transaction] = []
        self.open: set[MXProtocol] = set()

    async def close_all(self, reactor: Any) -> None:
        """Abort every open connection and wait until both ends are gone."""
        from twisted.internet import task

        for proto in list(self.open):
            proto.transport.abortConnection()  # type: ignore[union-attr]
        for _ in range(100):
            if not self.open:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        for _ in range(3):
            await task.deferLater(reactor, 0, lambda: None)


class ZoneResolver(common.ResolverBase):
    """Answers from ``records``: name -> list of RR payloads (Record_MX, Record_A ...).
    Unknown names are NXDOMAIN; known names without the type answer empty."""

    def __init__(self, records: dict[str, list[Any]]) -> None:
        super().__init__()
        self.records = records  # shared: tests change it in place (lower-case names)

    def _lookup(self, name: Any, cls: int, type: int, timeout: Any) -> defer.Deferred[Any]:
        key = (name.decode() if isinstance(name, bytes) else str(name)).lower().rstrip(".")
        if key not in self.records:
            return defer.fail(error.DomainError(key))
        answers = [
            dns.RRHeader(name=key, type=p.TYPE, payload=p, ttl=60, auth=True)
            for p in self.records[key]
            if type == p.TYPE
        ]
        return defer.succeed((answers, [], []))


def start_dns(reactor: Any, records: dict[str, list[Any]]) -> Any:
    """A DNS server on 127.0.0.1 (UDP, random port) answering from ``records``."""
    factory = server.DNSServerFactory(authorities=[ZoneResolver(records)])
    factory.noisy = False
    proto = dns.DNSDatagramProtocol(factory)
    proto.noisy = False
    return reactor.listenUDP(0, proto, interface="127.0.0.1")


def mx_records(port_host: str = "127.0.0.1", **domains: str) -> dict[str, list[Any]]:
    """``a_test="mx.a.test"`` -> MX for a.test and A 127.0.0.1 for the host."""
    records: dict[str, list[Any]] = {}
    for key, host in domains.items():
        records[key.replace("_", ".")] = [dns.Record_MX(10, host.encode())]
        records[host] = [dns.Record_A(port_host)]
    return records


def _main(state_dir: Path) -> None:  # pragma: no cover (runs in a subprocess)
    from twisted.internet import reactor

    script = MXScript()

    def on_data(txn: Transaction) -> None:
        hang = state_dir / "hang"
        script.hang_domains = set(hang.read_text().split()) if hang.exists() else set()
        with open(state_dir / "received.jsonl", "a") as f:
            rec = {
                "from": txn.mail_from,
                "rcpts": [a for a, _p in txn.recipients],
                "data": txn.data.decode("utf-8", "replace"),
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()

    script.on_data = on_data
    script.rcpt = {f"reject@{d}": "550 5.1.1 no such user here" for d in ("a.test", "b.test")}
    mx = reactor.listenTCP(0, MXFactory(script), interface="127.0.0.1")  # type: ignore[attr-defined]
    records = mx_records(a_test="mx.a.test", b_test="mx.b.test")
    udp = start_dns(reactor, records)
    ports = {"mx": mx.getHost().port, "dns": udp.getHost().port}
    tmp = state_dir / "ports.json.tmp"
    tmp.write_text(json.dumps(ports))
    tmp.rename(state_dir / "ports.json")
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":  # pragma: no cover
    _main(Path(sys.argv[1]))
