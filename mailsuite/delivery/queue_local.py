"""Blocking helpers of the queue runner: local delivery and DSN creation.

Run in the thread pool (through the runner).  :func:`deliver_local` hands
recipients in our own domains to the delivery agent (the one two-phase path
into mailboxes, DESIGN.md §4.2) after resolving them in the directory;
aliases that forward to other domains come back as new remote recipients.
:func:`queue_report` writes a DSN (RFC 3464) into the queue as a new entry
from the null sender.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsuite.delivery import dsn
from mailsuite.delivery.queue_store import QueueStore
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import DeliveryAgent, Directory, Envelope, LocalTarget

#: MailError kinds that end delivery for good, with their RFC 3463 status
PERMANENT_STATUS = {
    ErrorKind.UNKNOWN_MAILBOX: "5.1.1",
    ErrorKind.BAD_ADDRESS: "5.1.3",
    ErrorKind.ALIAS_LOOP: "5.4.6",
    ErrorKind.TOO_BIG: "5.2.3",
    ErrorKind.DISABLED: "5.2.1",
    ErrorKind.NONEXISTENT: "5.1.1",
}
TEMPORARY_STATUS = {ErrorKind.OVER_QUOTA: "4.2.2"}


@dataclass(frozen=True)
class LocalOutcome:
    """``result`` is ok, temp or perm; ``forwards`` are new remote recipients."""

    address: str
    result: str
    status: str
    diagnostic: str = ""
    forwards: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalJob:
    queue_id: str
    mail_from: str
    params: dict[str, str]
    recipients: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def is_local(directory: Directory, address: str) -> bool:
    """True when ``address``'s domain is one of ours."""
    _local, at, domain = address.rpartition("@")
    return bool(at) and directory.is_local_domain(domain)


def classify(directory: Directory, addresses: list[str]) -> dict[str, bool]:
    """address -> is local.  Blocking (directory)."""
    return {a: is_local(directory, a) for a in addresses}


def _failure(address: str, err: MailError) -> LocalOutcome:
    text = f"x-local; {err.public_text}"
    if err.kind in PERMANENT_STATUS:
        return LocalOutcome(address, "perm", PERMANENT_STATUS[err.kind], text)
    return LocalOutcome(address, "temp", TEMPORARY_STATUS.get(err.kind, "4.3.0"), text)


def deliver_local(
    store: QueueStore, agent: DeliveryAgent, directory: Directory, job: LocalJob
) -> list[LocalOutcome]:
    """Deliver ``job``'s message to its local recipients.  Blocking.

    Resolution failures are per recipient; a failure of the agent while
    receiving the message is a temporary failure of every recipient.
    """
    outcomes: dict[str, LocalOutcome] = {}
    targets: dict[str, list[LocalTarget]] = {}
    forwards: dict[str, tuple[str, ...]] = {}
    for address, _params in job.recipients:
        try:
            res = directory.resolve(address)
        except MailError as e:
            outcomes[address] = _failure(address, e)
            continue
        forwards[address] = tuple(res.remote)
        if res.local:
            targets[address] = list(res.local)
        else:
            outcomes[address] = LocalOutcome(address, "ok", "2.0.0", "", forwards[address])
    if targets:
        outcomes.update(_to_agent(store, agent, job, targets, forwards))
    return [outcomes[a] for a, _p in job.recipients]


def _to_agent(
    store: QueueStore,
    agent: DeliveryAgent,
    job: LocalJob,
    targets: dict[str, list[LocalTarget]],
    forwards: dict[str, tuple[str, ...]],
) -> dict[str, LocalOutcome]:
    params = dict(job.recipients)
    envelope = Envelope(
        job.mail_from, list(targets), dict(job.params), {a: params[a] for a in targets}
    )
    try:
        delivery = agent.begin(envelope)
        try:
            with store.open_message(job.queue_id) as f:
                while chunk := f.read(256 * 1024):
                    delivery.write(chunk)
        except BaseException:
            delivery.abort()
            raise
        results = delivery.commit(targets)
    except MailError as e:
        return {a: _failure(a, e) for a in targets}
    except OSError as e:
        err = MailError(ErrorKind.TEMPORARY, detail=str(e))
        return {a: _failure(a, err) for a in targets}
    out = {}
    for r in results:
        if r.recipient not in targets:
            continue
        if r.error is None:
            out[r.recipient] = LocalOutcome(r.recipient, "ok", "2.0.0", "", forwards[r.recipient])
        else:
            err = r.error if isinstance(r.error, MailError) else MailError(ErrorKind.TEMPORARY)
            out[r.recipient] = _failure(r.recipient, err)
    for a in targets:  # an agent that forgot a recipient: try again later
        out.setdefault(a, _failure(a, MailError(ErrorKind.TEMPORARY)))
    return out


def queue_report(
    store: QueueStore,
    queue_id: str,
    info: dsn.ReportInfo,
    recipients: list[dsn.DSNRecipient],
    size: int,
    now: float,
) -> str:
    """Build a DSN about ``queue_id`` and queue it to ``info.sender`` from
    the null sender.  Returns the new entry's id.  Blocking."""
    full = dsn.returns_full(info, recipients[0].action, size)
    with store.open_message(queue_id) as f:
        returned = f.read() if full else dsn.header_block(f.read(dsn.MAX_HEADER_BYTES))
    report = dsn.build_report(info, recipients, returned, full, now)
    params = {"BODY": "8BITMIME"} if dsn.needs_8bitmime(report) else {}
    envelope = Envelope("", [info.sender], params, {})
    return store.enqueue(envelope, report, now)
