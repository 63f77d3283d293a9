"""Fixtures for the SMTP unit tests: a session over StringTransport with a
task.Clock, the real SQLite directory and authenticator, and a controllable
runner.

The delivery agent and queue here are in-memory recorders: they implement
the Delivery / QueuedMessage contracts so that the state machine's use of
them (what is written, in which batches, when commit happens, how
per-recipient failures are reported) can be observed and failures
injected.  The real Maildir path is exercised end to end in test_e2e_*.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from mailsuite.config import AuthConfig, Config, SMTPConfig, UsersConfig
from mailsuite.context import ServerContext
from mailsuite.errors import MailError
from mailsuite.interfaces import DeliveryResult, Envelope, LocalTarget
from mailsuite.protocol.lines import ConnectionLimiter
from mailsuite.smtp.server import make_factory
from mailsuite.users.auth import DirectoryAuthenticator
from mailsuite.users.directory import SQLiteDirectory
from mailsuite.users.passwords import Argon2Params, PasswordHasher

CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse"


class ManualRunner:
    """A BlockingRunner whose calls run when the test says so.

    ``auto`` runs each call at once (like InlineRunner); otherwise calls
    wait in ``pending`` until :meth:`flush`.
    """

    def __init__(self, auto: bool = True) -> None:
        self.auto = auto
        self.pending: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []
        self.calls = 0

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        self.calls += 1
        if self.auto:
            return defer.maybeDeferred(fn, *args, **kw)
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append((lambda: fn(*args, **kw), (), d))
        return d

    def flush(self) -> int:
        """Run every pending call (and those they cause); returns how many ran."""
        n = 0
        while self.pending:
            fn, _, d = self.pending.pop(0)
            n += 1
            try:
                result = fn()
            except BaseException as e:
                d.errback(e)
            else:
                d.callback(result)
        return n


class RecordingDelivery:
    def __init__(self, agent: RecordingAgent, envelope: Envelope) -> None:
        self.agent = agent
        self.envelope = envelope
        self.writes: list[bytes] = []
        self.state = "open"

    def write(self, data: bytes) -> None:
        assert self.state == "open"
        self.writes.append(data)

    def size(self) -> int:
        return sum(map(len, self.writes))

    def commit(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]:
        assert self.state == "open"
        if self.agent.commit_error is not None:
            raise self.agent.commit_error
        self.state = "committed"
        results = []
        for rcpt, tlist in targets.items():
            error = self.agent.failures.get(rcpt)
            results.append(DeliveryResult(rcpt, error, None if error else 1))
            if error is None:
                for t in tlist:
                    self.agent.stored.append((t.account, b"".join(self.writes)))
        self.agent.committed.append(self)
        return results

    def abort(self) -> None:
        if self.state == "open":
            self.state = "aborted"
            self.agent.aborted.append(self)

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class RecordingAgent:
    def __init__(self) -> None:
        self.begun: list[RecordingDelivery] = []
        self.committed: list[RecordingDelivery] = []
        self.aborted: list[RecordingDelivery] = []
        self.stored: list[tuple[str, bytes]] = []
        self.failures: dict[str, MailError] = {}
        self.commit_error: BaseException | None = None
        self.begin_error: BaseException | None = None

    def begin(self, envelope: Envelope) -> RecordingDelivery:
        if self.begin_error is not None:
            raise self.begin_error
        d = RecordingDelivery(self, envelope)
        self.begun.append(d)
        return d


class RecordingQueued:
    def __init__(self, queue: RecordingQueue, envelope: Envelope) -> None:
        self.queue = queue
        self.envelope = envelope
        self.writes: list[bytes] = []
        self.state = "open"
        self.recipients: list[str] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def commit(self, recipients: list[str]) -> str:
        if self.queue.commit_error is not None:
            raise self.queue.commit_error
        self.state = "committed"
        self.recipients = recipients
        self.queue.committed.append(self)
        return f"Q{len(self.queue.committed)}"

    def abort(self) -> None:
        if self.state == "open":
            self.state = "aborted"
            self.queue.aborted.append(self)

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class RecordingQueue:
    def __init__(self) -> None:
        self.committed: list[RecordingQueued] = []
        self.aborted: list[RecordingQueued] = []
        self.commit_error: BaseException | None = None

    def begin(self, envelope: Envelope) -> RecordingQueued:
        return RecordingQueued(self, envelope)


class FakeTLS:
    def server_options(self) -> object:
        return object()


class _Handle:
    def get_protocol_version_name(self) -> str:
        return "TLSv1.3"

    def get_cipher_name(self) -> str:
        return "TLS_AES_256_GCM_SHA384"


class TLSStringTransport(StringTransport):
    """StringTransport that records startTLS (no real handshake)."""

    tls_started = False

    def startTLS(self, options: Any) -> None:
        self.tls_started = True

    def getHandle(self) -> Any:
        return _Handle()


class Client:
    """Drives one session: ``send`` bytes, read ``replies``."""

    def __init__(self, env: Env, role: str) -> None:
        self.env = env
        self.factory = make_factory(env.context, role, False)
        self.proto: Any = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        self.transport = TLSStringTransport()
        self.proto.makeConnection(self.transport)

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.proto.dataReceived(data)

    def lines(self) -> list[str]:
        out = self.transport.value().decode("utf-8", "replace")
        self.transport.clear()
        return [line for line in out.split("\r\n") if line]

    def replies(self) -> list[str]:
        """Complete replies, multi-line ones joined with "|"."""
        result, current = [], []
        for line in self.lines():
            current.append(line)
            if len(line) < 4 or line[3] != "-":
                result.append("|".join(current))
                current = []
        assert not current, current
        return result

    def cmd(self, line: str) -> str:
        self.send(line + "\r\n")
        got = self.replies()
        assert len(got) == 1, got
        return got[0]

    def codes(self) -> list[str]:
        out = []
        for r in self.replies():
            words = r.split(" ")
            enhanced = len(words) > 1 and words[1][:1].isdigit() and "." in words[1]
            out.append(" ".join(words[:2]) if enhanced else r[:3])
        return out

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def start_tls(self) -> None:
        """STARTTLS and pretend the handshake happened."""
        assert self.cmd("STARTTLS").startswith("220 2.0.0")
        assert self.transport.tls_started

    def ehlo(self) -> str:
        self.send("EHLO client.example\r\n")
        return self.replies()[-1]

    def login(self, user: str = "alice@example.test", password: str = PASSWORD) -> None:
        import base64

        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        assert self.cmd(f"AUTH PLAIN {token}").startswith("235 2.7.0"), self.env.context


@dataclasses.dataclass
class Env:
    context: ServerContext
    runner: ManualRunner
    agent: RecordingAgent
    queue: RecordingQueue
    directory: SQLiteDirectory
    clock: task.Clock

    def client(self, role: str = "smtp", greet: bool = True) -> Client:
        c = Client(self, role)
        assert c.lines()[0].startswith("220 mail.example.test")
        if greet:
            c.ehlo()
        return c

    def configure(self, **smtp: Any) -> None:
        cfg = self.context.config
        self.context.config = dataclasses.replace(cfg, smtp=dataclasses.replace(cfg.smtp, **smtp))

    def allow_plaintext(self) -> None:
        cfg = self.context.config
        self.context.config = dataclasses.replace(
            cfg, auth=dataclasses.replace(cfg.auth, allow_plaintext=True)
        )

    def use_queue(self) -> None:
        self.context.queue = self.queue


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = task.Clock()
    runner = ManualRunner()
    directory = SQLiteDirectory(tmp_path / "users.sqlite", UsersConfig())
    hasher = PasswordHasher(CHEAP)
    directory.add_domain("example.test")
    directory.add_domain("other.test")
    for user in ("alice@example.test", "bob@example.test", "carol@other.test"):
        directory.add_user(user, hasher.hash(PASSWORD))
    directory.add_alias("team@example.test", ["alice@example.test", "bob@example.test"])
    directory.add_alias("sales@example.test", ["alice@example.test"])
    directory.add_alias("fwd@example.test", ["someone@remote.example"])
    auth_config = AuthConfig(
        argon2_time_cost=CHEAP.time_cost,
        argon2_memory_cost=CHEAP.memory_cost,
        argon2_parallelism=CHEAP.parallelism,
    )
    config = Config(auth=auth_config, smtp=SMTPConfig())
    config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, hostname="mail.example.test")
    )
    agent = RecordingAgent()
    context = ServerContext(
        reactor=clock,
        config=config,
        runner=runner,
        store=None,  # type: ignore[arg-type]
        directory=directory,
        agent=agent,
        auth=DirectoryAuthenticator(directory, runner, clock, auth_config, hasher=hasher),
        hub=None,  # type: ignore[arg-type]
        tls=FakeTLS(),
        limiter=ConnectionLimiter(100, 100),
    )
    yield Env(context, runner, agent, RecordingQueue(), directory, clock)
    directory.close()
