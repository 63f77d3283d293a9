"""One delivery attempt of one queue entry, and what follows from it.

:func:`run_attempt` is called with the entry locked.  It delivers every
pending recipient: local ones through the delivery agent, remote ones per
domain through :class:`mailsuite.delivery.relay.Relay` (the domains in
parallel, within the relay's concurrency limits).  After each domain's
transaction the per-recipient results are saved at once, so a recipient
that was delivered is never sent again, whatever happens next.

Then (:func:`_conclude`): recipients still pending past ``queue.max_age``
fail (status 4.4.7); a delay notice is sent once after
``queue.delay_notice_after``; DSNs (RFC 3464) are queued for final results
the sender asked for (RFC 3461 NOTIFY, never for the null sender); the
entry is removed when nothing is left, else its next attempt is scheduled
from ``queue.retry_schedule`` (the last value repeats).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from mailsuite.delivery import dsn
from mailsuite.delivery.queue_local import (
    LocalJob,
    LocalOutcome,
    classify,
    deliver_local,
    queue_report,
)
from mailsuite.delivery.queue_store import DELIVERED, FAILED, PENDING, QueueEntry, RecipientState
from mailsuite.delivery.relay import RcptOutcome, RelayJob

if TYPE_CHECKING:
    from mailsuite.delivery.queue import OutboundQueue

log = Logger()


class Attempt:
    """State of one attempt; ``new_entries`` are ids queued meanwhile (DSNs)."""

    def __init__(self, queue: OutboundQueue, entry: QueueEntry) -> None:
        self.q = queue
        self.entry = entry
        self.now = queue.clock.seconds()
        self.new_entries: list[str] = []
        self._save_lock = defer.DeferredLock()

    async def save(self) -> None:
        """Write the entry's state (serialised here, written in the pool)."""
        raw = self.entry.to_json()
        await self._save_lock.run(self.q.runner.run, self.q.store.save_bytes, self.entry.id, raw)

    async def run(self) -> bool:
        """Deliver and conclude; returns True if the entry was removed."""
        entry = self.entry
        entry.attempts += 1
        entry.last_attempt = self.now
        pending = [r.address for r in entry.pending()]
        if pending:
            where = await self.q.runner.run(classify, self.q.directory, pending)
            local = [a for a in pending if where[a]]
            remote = [a for a in pending if not where[a]]
            if local:
                await self._local(local)
            # forwards found by local delivery are new remote recipients
            remote += [r.address for r in entry.pending() if r.address not in where]
            await self._remote(remote)
        return await self._conclude()

    # -- delivering ------------------------------------------------------------
    def _params(self, address: str) -> dict[str, str]:
        return next(r.params for r in self.entry.recipients if r.address == address)

    async def _local(self, addresses: list[str]) -> None:
        entry = self.entry
        job = LocalJob(
            entry.id, entry.mail_from, entry.params, [(a, self._params(a)) for a in addresses]
        )
        try:
            outcomes = await self.q.runner.run(
                deliver_local, self.q.store, self.q.agent, self.q.directory, job
            )
        except Exception:
            log.failure("{qid}: local delivery failed", qid=entry.id)
            outcomes = [
                LocalOutcome(a, "temp", "4.3.0", "x-local; internal error") for a in addresses
            ]
        for o in outcomes:
            self._apply_local(o)
        await self.save()

    def _apply_local(self, o: LocalOutcome) -> None:
        rcpt = self._recipient(o.address)
        if o.result == "ok":
            existing = {r.address for r in self.entry.recipients}
            for fwd in o.forwards:
                if fwd not in existing:
                    self.entry.recipients.append(RecipientState(fwd, _forward_params(rcpt)))
            self._final(
                rcpt,
                DELIVERED,
                "expanded" if o.forwards else "delivered",
                o.status,
                o.diagnostic,
                "",
            )
        elif o.result == "perm":
            self._final(rcpt, FAILED, "failed", o.status, o.diagnostic, "")
        else:
            self._retry(rcpt, o.status, o.diagnostic, "")

    async def _remote(self, addresses: list[str]) -> None:
        by_domain: dict[str, list[str]] = defaultdict(list)
        for a in addresses:
            by_domain[a.rpartition("@")[2].lower()].append(a)
        if self.q.relay.smarthost is not None and by_domain:
            by_domain = {"smarthost": addresses}
        jobs = [self._deliver_domain(domain, rcpts) for domain, rcpts in by_domain.items()]
        if jobs:
            await defer.gatherResults(jobs, consumeErrors=True)

    def _deliver_domain(self, domain: str, addresses: list[str]) -> defer.Deferred[None]:
        async def go() -> None:
            entry = self.entry
            job = RelayJob(
                destination=domain,
                mail_from=entry.mail_from,
                mail_params=entry.params,
                recipients=[(a, self._params(a)) for a in addresses],
                size=entry.size,
                open_message=lambda: self.q.store.open_message(entry.id),
            )
            outcomes = await self.q.relay.deliver(job)
            for o in outcomes:
                self._apply_remote(o)
            await self.save()
            log.info(
                "{qid}: {dom}: {res}",
                qid=entry.id,
                dom=domain,
                res=", ".join(f"{o.address} {o.result} {o.status}" for o in outcomes),
            )

        return defer.Deferred.fromCoroutine(go())

    def _apply_remote(self, o: RcptOutcome) -> None:
        rcpt = self._recipient(o.address)
        if o.result == "ok":
            action = "delivered" if o.dsn_relayed else "relayed"
            self._final(rcpt, DELIVERED, action, o.status, o.diagnostic, o.remote_mta)
            if o.dsn_relayed:
                rcpt.notified = True  # the next server reports success itself (RFC 3461 §4.1)
        elif o.result == "perm":
            self._final(rcpt, FAILED, "failed", o.status, o.diagnostic, o.remote_mta)
        else:
            self._retry(rcpt, o.status, o.diagnostic, o.remote_mta)

    # -- recording -------------------------------------------------------------
    def _recipient(self, address: str) -> RecipientState:
        return next(
            r for r in self.entry.recipients if r.address == address and r.status == PENDING
        )

    def _final(
        self, rcpt: RecipientState, status: str, action: str, code: str, diag: str, remote: str
    ) -> None:
        rcpt.status, rcpt.action = status, action
        rcpt.status_code, rcpt.diagnostic, rcpt.remote_mta = code, diag, remote
        rcpt.updated = self.now
        kind = "FAILURE" if status == FAILED else "SUCCESS"
        rcpt.notified = not (self.entry.mail_from and dsn.wants_notice(rcpt.params, kind))

    def _retry(self, rcpt: RecipientState, code: str, diag: str, remote: str) -> None:
        rcpt.status_code, rcpt.diagnostic, rcpt.remote_mta = code, diag, remote
        rcpt.updated = self.now

    # -- concluding --------------------------------------------------------------
    async def _conclude(self) -> bool:
        entry, cfg = self.entry, self.q.config
        if entry.pending() and self.now >= entry.created + cfg.max_age:
            for rcpt in entry.pending():
                reason = rcpt.diagnostic or "no delivery attempt succeeded"
                self._final(rcpt, FAILED, "failed", "4.4.7", reason, rcpt.remote_mta)
                rcpt.diagnostic = reason
        await self._notices()
        if entry.finished():
            await self.q.runner.run(self.q.store.remove, entry.id)
            log.info("{qid}: done after {n} attempt(s)", qid=entry.id, n=entry.attempts)
            return True
        schedule = cfg.retry_schedule
        delay = schedule[min(entry.attempts, len(schedule)) - 1]
        entry.next_attempt = min(self.now + delay, max(entry.created + cfg.max_age, self.now + 1))
        await self.save()
        return False

    async def _notices(self) -> None:
        entry, cfg = self.entry, self.q.config
        failed = [r for r in entry.recipients if r.status == FAILED and not r.notified]
        succeeded = [r for r in entry.recipients if r.status == DELIVERED and not r.notified]
        delayed: list[RecipientState] = []
        if (
            cfg.delay_notice_after
            and not entry.delay_notified
            and entry.pending()
            and self.now >= entry.created + cfg.delay_notice_after
        ):
            entry.delay_notified = True
            if entry.mail_from:
                delayed = [r for r in entry.pending() if dsn.wants_notice(r.params, "DELAY")]
        for group in (failed, succeeded, delayed):
            if group:
                await self._report(group)
            for r in group:
                if r.status != PENDING:
                    r.notified = True

    async def _report(self, rcpts: list[RecipientState]) -> None:
        entry = self.entry
        until = entry.created + self.q.config.max_age
        reports = [
            dsn.DSNRecipient(
                address=r.address,
                action=r.action if r.status != PENDING else "delayed",
                status=r.status_code or ("4.0.0" if r.status == PENDING else "2.0.0"),
                original=dsn.original_recipient(r.params),
                remote_mta=r.remote_mta,
                diagnostic=_diagnostic(r.diagnostic),
                last_attempt=self.now if r.status != DELIVERED else None,
                will_retry_until=until if r.status == PENDING else None,
            )
            for r in rcpts
        ]
        info = dsn.ReportInfo(
            reporting_mta=self.q.hostname,
            sender=entry.mail_from,
            arrival=entry.created,
            envid=dsn.param(entry.params, "ENVID") or "",
            ret=dsn.param(entry.params, "RET") or "",
        )
        try:
            new_id = await self.q.runner.run(
                queue_report, self.q.store, entry.id, info, reports, entry.size, self.now
            )
        except Exception:
            log.failure("{qid}: could not queue a DSN", qid=entry.id)
            raise
        self.new_entries.append(new_id)
        log.info(
            "{qid}: DSN {nid} ({action}) to <{to}>",
            qid=entry.id,
            nid=new_id,
            action=reports[0].action,
            to=entry.mail_from,
        )


def _diagnostic(text: str) -> str:
    """Diagnostic-Code needs a type; texts of our own are ``x-local``."""
    if not text:
        return ""
    kind, sep, _rest = text.partition(";")
    if sep and kind.strip() and " " not in kind.strip():
        return text
    return f"x-local; {text}"


def _forward_params(original: RecipientState) -> dict[str, str]:
    """An alias expansion keeps NOTIFY and records the original recipient (RFC 3461 §6.2)."""
    params: dict[str, Any] = {}
    notify = dsn.param(original.params, "NOTIFY")
    if notify:
        params["NOTIFY"] = notify
    params["ORCPT"] = dsn.param(original.params, "ORCPT") or "rfc822;" + dsn.xtext_encode(
        original.address
    )
    return params
