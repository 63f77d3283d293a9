"""Remote delivery: one SMTP transaction per destination (RFC 5321 §3.3, §5.1).

:meth:`Relay.deliver` takes a :class:`RelayJob` (all pending recipients of
one domain, or of every domain when a smarthost is configured) and returns a
:class:`RcptOutcome` per recipient.  It looks up the MX hosts
(:mod:`mailsuite.delivery.queue_mx`), then tries each host's addresses in
turn until one session gets past DATA or refuses recipients; a host failure
(no connection, bad greeting, TLS policy not met, 4xx to MAIL, connection
lost before the end of DATA) moves to the next address.  When every host
fails, all recipients get the last failure as a temporary result.

TLS (RFC 3207): STARTTLS is used whenever offered.  For domains in
``queue.require_tls_domains`` and for the smarthost it is required and the
certificate is verified with service_identity against the host name
(trust: ``queue.tls_ca_file`` or the system store); a host that does not
offer it is a temporary failure (4.7.4).  If an opportunistic handshake
fails, the same address is retried once in plaintext.

The smarthost (``queue.smarthost``) is tried instead of MX hosts; with
``queue.smarthost_username`` it is authenticated with AUTH PLAIN or LOGIN
(RFC 4954) after TLS.  DSN parameters (RFC 3461) are passed on when the
server offers DSN; SIZE (RFC 1870), BODY=8BITMIME (RFC 6152) and SMTPUTF8
(RFC 6531) likewise.  Concurrency: at most ``max_per_destination`` jobs
per destination and ``max_concurrent`` in total hold a connection slot.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer, endpoints, ssl
from twisted.logger import Logger

from mailsuite.config import QueueConfig
from mailsuite.delivery import queue_mx
from mailsuite.delivery.dsn import param
from mailsuite.delivery.queue_client import ConnectionFailed, Reply, SMTPClientProtocol
from mailsuite.interfaces import BlockingRunner

log = Logger()

#: addresses tried per job before giving up for this attempt
MAX_ADDRESSES = 10
DATA_END_TIMEOUT = 600.0


@dataclass(frozen=True)
class RelayJob:
    """What one transaction carries.  ``open_message`` is blocking."""

    destination: str  # the recipient domain
    mail_from: str
    mail_params: dict[str, str]
    recipients: list[tuple[str, dict[str, str]]]
    size: int
    open_message: Callable[[], IO[bytes]]


@dataclass(frozen=True)
class RcptOutcome:
    """``result`` is "ok", "temp" or "perm".  ``dsn_relayed`` is True when
    the next server took over DSN duties (it offered DSN)."""

    address: str
    result: str
    status: str
    diagnostic: str
    remote_mta: str = ""
    dsn_relayed: bool = False


@dataclass(frozen=True)
class TLSPolicy:
    use: bool = True
    required: bool = False
    verify_name: str = ""  # host name to verify (required TLS)
    auth: bool = False


class HostFailure(Exception):
    """This host cannot take the job now; the next one may."""

    def __init__(self, status: str, text: str, tls_failed: bool = False) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.tls_failed = tls_failed


@dataclass
class _Limits:
    total: defer.DeferredSemaphore
    per_destination: int
    by_dest: dict[str, defer.DeferredSemaphore] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    async def acquire(self, dest: str) -> Callable[[], None]:
        sem = self.by_dest.setdefault(dest, defer.DeferredSemaphore(self.per_destination))
        self.users[dest] = self.users.get(dest, 0) + 1
        await sem.acquire()
        await self.total.acquire()

        def release() -> None:
            self.total.release()
            sem.release()
            self.users[dest] -= 1
            if not self.users[dest]:
                del self.users[dest], self.by_dest[dest]

        return release


class Relay:
    """Delivers :class:`RelayJob` objects over SMTP."""

    def __init__(
        self,
        config: QueueConfig,
        reactor: Any,
        clock: Any,
        runner: BlockingRunner,
        hostname: str,
        resolver: Any,
        smarthost_password: str = "",
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.clock = clock
        self.runner = runner
        self.hostname = hostname
        self.resolver = resolver
        self._password = smarthost_password
        self._limits = _Limits(
            defer.DeferredSemaphore(config.max_concurrent), config.max_per_destination
        )
        self._connections: set[SMTPClientProtocol] = set()
        self.stopping = False
        self._trust = _load_trust(config.tls_ca_file)
        self.smarthost = (
            queue_mx.parse_hostport(config.smarthost, 25) if config.smarthost else None
        )
        self._require_tls = {d.lower().rstrip(".") for d in config.require_tls_domains}

    def stop(self) -> None:
        """Drop every open connection and make no new ones (service stop);
        the jobs in progress end with temporary failures."""
        self.stopping = True
        for proto in list(self._connections):
            proto.abort()

    # -- planning ------------------------------------------------------------
    async def _targets(self, domain: str) -> list[tuple[str, int, TLSPolicy]]:
        if self.smarthost is not None:
            host, port = self.smarthost
            auth = bool(self.config.smarthost_username)
            return [(host, port, TLSPolicy(required=True, verify_name=host, auth=auth))]
        port = self.config.mx_port
        literal = queue_mx.address_literal(domain)
        if literal is not None:
            return [(literal, port, TLSPolicy())]
        required = domain.lower() in self._require_tls
        hosts = await queue_mx.lookup_mx(self.resolver, domain)
        return [(h.name, port, TLSPolicy(required=required, verify_name=h.name)) for h in hosts]

    async def deliver(self, job: RelayJob) -> list[RcptOutcome]:
        """Deliver ``job``; never raises (every failure becomes outcomes)."""
        dest = "smarthost" if self.smarthost else job.destination.lower()
        release = await self._limits.acquire(dest)
        try:
            return await self._deliver(job)
        except Exception:
            log.failure("relay to {dest} failed unexpectedly", dest=dest)
            return _all(job, "temp", "4.3.0", "Internal error during delivery, will retry")
        finally:
            release()

    async def _deliver(self, job: RelayJob) -> list[RcptOutcome]:
        try:
            targets = await self._targets(job.destination)
        except queue_mx.DestinationError as e:
            return _all(job, "perm" if e.permanent else "temp", e.status, e.text)
        last = HostFailure("4.4.1", "No mail host could be reached")
        if self.stopping:
            last = HostFailure("4.3.2", "Delivery interrupted by a server shutdown")
        tried = 0
        for name, port, policy in targets:
            try:
                addresses = await queue_mx.lookup_addresses(self.resolver, name)
            except queue_mx.DestinationError as e:
                last = HostFailure("4.4.4", e.text)
                continue
            for address in addresses:
                if tried >= MAX_ADDRESSES or self.stopping:
                    break
                tried += 1
                try:
                    return await self._try(job, name, address, port, policy)
                except HostFailure as e:
                    last = e
                    log.info(
                        "{dest}: {host}[{addr}]: {why}",
                        dest=job.destination,
                        host=name,
                        addr=address,
                        why=e.text,
                    )
                    if not (e.tls_failed and not policy.required):
                        continue
                if self.stopping:
                    break
                plain = dataclasses.replace(policy, use=False)
                try:
                    return await self._try(job, name, address, port, plain)
                except HostFailure as e:
                    last = e
        return _all(job, "temp", last.status, last.text)

    # -- one connection --------------------------------------------------------
    async def _try(
        self, job: RelayJob, name: str, address: str, port: int, policy: TLSPolicy
    ) -> list[RcptOutcome]:
        proto = SMTPClientProtocol(self.clock, self.config.command_timeout)
        cls = endpoints.TCP6ClientEndpoint if ":" in address else endpoints.TCP4ClientEndpoint
        endpoint = cls(self.reactor, address, port, timeout=self.config.connect_timeout)
        try:
            await endpoints.connectProtocol(endpoint, proto)
        except Exception as e:
            raise HostFailure(
                "4.4.1", f"Cannot connect to {name}[{address}]:{port} ({type(e).__name__})"
            )
        self._connections.add(proto)
        session = _Session(self, proto, job, name, policy)
        try:
            return await session.run()
        except ConnectionFailed as e:
            tls = session.in_tls_setup  # X.7.5: cryptographic failure (RFC 3463)
            raise HostFailure(
                "4.7.5" if tls else "4.4.2", f"{name}[{address}]: {e}", tls_failed=tls
            )
        finally:
            self._connections.discard(proto)
            proto.quit()

    def tls_options(self, policy: TLSPolicy) -> Any:
        if policy.required:
            return ssl.optionsForClientTLS(policy.verify_name, trustRoot=self._trust)
        return ssl.CertificateOptions(verify=False)


def _load_trust(path: str) -> Any:
    """The trust root for verified TLS (None: the platform's)."""
    if not path:
        return None
    certs = ssl.Certificate.loadPEM  # one or more certificates in one file
    data = Path(path).read_bytes()
    pems = [
        p + b"-----END CERTIFICATE-----\n"
        for p in data.split(b"-----END CERTIFICATE-----")
        if b"-----BEGIN CERTIFICATE-----" in p
    ]
    return ssl.trustRootFromCertificates([certs(p) for p in pems])


def _all(job: RelayJob, result: str, status: str, text: str) -> list[RcptOutcome]:
    return [RcptOutcome(addr, result, status, text) for addr, _p in job.recipients]


def _needs_smtputf8(job: RelayJob) -> bool:
    if param(job.mail_params, "SMTPUTF8") is not None:
        return True
    return not job.mail_from.isascii() or any(not a.isascii() for a, _p in job.recipients)


class _Session:
    """The command sequence on one connection (RFC 5321 §3.3, §4.1.1)."""

    def __init__(
        self, relay: Relay, proto: SMTPClientProtocol, job: RelayJob, host: str, policy: TLSPolicy
    ) -> None:
        self.relay = relay
        self.proto = proto
        self.job = job
        self.host = host
        self.policy = policy
        self.ext: dict[str, str] = {}
        self.in_tls_setup = False

    def _diag(self, reply: Reply) -> str:
        return f"smtp; {reply}"

    async def run(self) -> list[RcptOutcome]:
        greeting = await self.proto.next_reply()
        if greeting.code != 220:
            raise HostFailure("4.4.2", f"{self.host} greeted with {greeting}")
        await self._ehlo()
        await self._starttls()
        if self.policy.auth:
            await self._auth()
        return await self._transaction()

    async def _ehlo(self) -> None:
        reply = await self.proto.command(f"EHLO {self.relay.hostname}")
        if reply.code == 250:
            self.ext = {}
            for line in reply.lines[1:]:
                keyword, _, args = line.strip().partition(" ")
                self.ext[keyword.upper()] = args
            return
        if reply.permanent:
            reply = await self.proto.command(f"HELO {self.relay.hostname}")
            if reply.code == 250:
                self.ext = {}
                return
        raise HostFailure("4.4.2", f"{self.host} refused EHLO: {reply}")

    async def _starttls(self) -> None:
        if not self.policy.use:
            return
        if "STARTTLS" not in self.ext:
            if self.policy.required:
                raise HostFailure(
                    "4.7.4", f"TLS is required, but {self.host} does not offer STARTTLS"
                )
            return
        reply = await self.proto.command("STARTTLS")
        if reply.code != 220:
            if self.policy.required:
                raise HostFailure("4.7.4", f"{self.host} refused STARTTLS: {reply}")
            return
        self.in_tls_setup = True
        self.proto.start_tls(self.relay.tls_options(self.policy))
        await self._ehlo()  # fails with ConnectionFailed if the handshake fails
        self.in_tls_setup = False

    async def _auth(self) -> None:
        mechs = self.ext.get("AUTH", "").upper().split()
        user = self.relay.config.smarthost_username
        password = self.relay._password
        if "PLAIN" in mechs:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            reply = await self.proto.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechs:
            reply = await self.proto.command("AUTH LOGIN")
            for secret in (user, password):
                if reply.code != 334:
                    break
                reply = await self.proto.command(base64.b64encode(secret.encode()).decode())
        else:
            raise HostFailure("4.7.0", f"{self.host} offers no AUTH mechanism we can use")
        if reply.code != 235:
            raise HostFailure("4.7.0", f"Authentication to {self.host} failed: {reply}")

    def _mail_params(self) -> str:
        out = []
        job = self.job
        if "SIZE" in self.ext:
            out.append(f"SIZE={job.size}")
        body = (param(job.mail_params, "BODY") or "").upper()
        if body == "8BITMIME" and "8BITMIME" in self.ext:
            out.append("BODY=8BITMIME")
        if _needs_smtputf8(job):
            out.append("SMTPUTF8")
        if "DSN" in self.ext:
            for key in ("RET", "ENVID"):
                value = param(job.mail_params, key)
                if value:
                    out.append(f"{key}={value}")
        return "".join(" " + p for p in out)

    def _rcpt_params(self, params: dict[str, str]) -> str:
        if "DSN" not in self.ext:
            return ""
        out = [f"{k}={v}" for k in ("NOTIFY", "ORCPT") if (v := param(params, k))]
        return "".join(" " + p for p in out)

    def _precheck(self) -> list[RcptOutcome] | None:
        limit = self.ext.get("SIZE", "").strip()
        if limit.isdigit() and int(limit) > 0 and self.job.size > int(limit):
            return self._outcomes(
                "perm", "5.3.4", f"Message too big for {self.host} (limit {limit})"
            )
        if _needs_smtputf8(self.job) and "SMTPUTF8" not in self.ext:
            return self._outcomes("perm", "5.6.7", f"{self.host} does not support SMTPUTF8")
        return None

    def _outcomes(self, result: str, status: str, text: str) -> list[RcptOutcome]:
        return [RcptOutcome(a, result, status, text, self.host) for a, _p in self.job.recipients]

    async def _transaction(self) -> list[RcptOutcome]:
        early = self._precheck()
        if early is not None:
            return early
        reply = await self.proto.command(f"MAIL FROM:<{self.job.mail_from}>{self._mail_params()}")
        if not reply.positive:
            if reply.permanent:
                return self._outcomes("perm", reply.enhanced, self._diag(reply))
            raise HostFailure(reply.enhanced, f"{self.host} said {reply}")
        final: dict[str, RcptOutcome] = {}
        accepted: list[str] = []
        for address, params in self.job.recipients:
            reply = await self.proto.command(f"RCPT TO:<{address}>{self._rcpt_params(params)}")
            if reply.positive:
                accepted.append(address)
            else:
                result = "perm" if reply.permanent else "temp"
                final[address] = RcptOutcome(
                    address, result, reply.enhanced, self._diag(reply), self.host
                )
        if accepted:
            for outcome in await self._data(accepted):
                final[outcome.address] = outcome
        else:
            await self.proto.command("RSET")
        return [final[a] for a, _p in self.job.recipients]

    async def _data(self, accepted: list[str]) -> list[RcptOutcome]:
        reply = await self.proto.command("DATA")
        if reply.code != 354:
            result = "perm" if reply.permanent else "temp"
            return [
                RcptOutcome(a, result, reply.enhanced, self._diag(reply), self.host)
                for a in accepted
            ]
        runner = self.relay.runner
        f = await runner.run(self.job.open_message)
        try:
            await self.proto.send_body(lambda n: runner.run(f.read, n))
        finally:
            await runner.run(f.close)
        reply = await self.proto.next_reply(
            max(DATA_END_TIMEOUT, self.relay.config.command_timeout)
        )
        if reply.positive:
            relayed = "DSN" in self.ext
            diag = self._diag(reply)
            return [
                RcptOutcome(a, "ok", reply.enhanced, diag, self.host, relayed) for a in accepted
            ]
        result = "perm" if reply.permanent else "temp"
        return [
            RcptOutcome(a, result, reply.enhanced, self._diag(reply), self.host) for a in accepted
        ]
