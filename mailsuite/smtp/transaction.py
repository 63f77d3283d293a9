"""One mail transaction: the envelope being built, and the message writer.

:class:`Transaction` collects what MAIL and RCPT accepted.  Each accepted
recipient (as the client wrote it) maps to its local targets (accounts) and
its remote addresses (outside our domains: submission, or forwarding
aliases).  Remote addresses go to the outbound queue.

:class:`MessageWriter` streams the message into the storage commit path
(DESIGN.md §4.2: begin -> write -> commit/abort) and, when there are remote
addresses, into the queue.  Every blocking call runs through the runner;
the session never has two calls of one writer in flight (it holds input
while one is pending), except :meth:`MessageWriter.abort`, which waits for
the call in flight.

Commit order and what the reply means (issue 5; RFC 5321 has one reply for
DATA): local copies are committed first, then the queue copy.

* every local copy failed -> the queue copy is aborted and the reply is the
  failure (the sender retries; nothing was stored twice);
* some local copies stored -> the queue copy is committed and the reply is
  250 naming how many recipients got it; the failed recipients are logged
  and not reported further (no DSN is generated yet);
* the queue commit fails after local copies were stored -> a temporary
  failure is returned: the sender retries and the local recipients may get
  a duplicate, but no copy is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from mailsuite.interfaces import (
    BlockingRunner,
    DeliveryAgent,
    DeliveryResult,
    Envelope,
    LocalTarget,
)
from mailsuite.smtp.address import Path
from mailsuite.smtp.params import MailParams

log = Logger()


@dataclass(slots=True)
class Transaction:
    """The envelope of one message (MAIL ... RCPT ...)."""

    sender: Path
    params: MailParams
    recipients: list[str] = field(default_factory=list)
    local: dict[str, list[LocalTarget]] = field(default_factory=dict)
    remote: dict[str, list[str]] = field(default_factory=dict)
    rcpt_params: dict[str, dict[str, str]] = field(default_factory=dict)
    mode: str = ""  # "", "DATA" or "BDAT" once content started
    failed: bool = False  # a BDAT chunk failed: later chunks are refused

    def add(
        self,
        recipient: str,
        local: tuple[LocalTarget, ...],
        remote: tuple[str, ...],
        params: dict[str, str],
    ) -> None:
        self.recipients.append(recipient)
        # One copy per mailbox: targets an earlier recipient already has
        # (alice@ given directly and through an alias) are not repeated.
        seen = {t for targets in self.local.values() for t in targets}
        fresh = [t for t in local if t not in seen]
        if local:
            self.local[recipient] = fresh
        if remote:
            self.remote[recipient] = list(remote)
        if params:
            self.rcpt_params[recipient] = params

    def remote_addresses(self) -> list[str]:
        seen: dict[str, None] = {}
        for addresses in self.remote.values():
            for a in addresses:
                seen.setdefault(a)
        return list(seen)

    def local_envelope(self) -> Envelope | None:
        if not self.local:
            return None
        rcpts = [r for r in self.recipients if r in self.local]
        return Envelope(
            self.sender.mailbox,
            rcpts,
            dict(self.params.stored),
            {r: dict(self.rcpt_params[r]) for r in rcpts if r in self.rcpt_params},
        )

    def remote_envelope(self) -> Envelope | None:
        addresses = self.remote_addresses()
        if not addresses:
            return None
        rcpt_params: dict[str, dict[str, str]] = {}
        for original, targets in self.remote.items():
            for a in targets:
                if original in self.rcpt_params:
                    rcpt_params.setdefault(a, dict(self.rcpt_params[original]))
        return Envelope(self.sender.mailbox, addresses, dict(self.params.stored), rcpt_params)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the commit did: per local recipient results and the queue id."""

    results: list[DeliveryResult]
    queue_id: str
    queued: tuple[str, ...]  # accepted recipients whose copy went to the queue


class MessageWriter:
    """Writes one message to the local delivery and/or the outbound queue.

    ``local_prefix`` and ``queue_prefix`` are the trace fields written before
    the content of each copy.  Nothing is opened until the first write.
    """

    def __init__(
        self,
        runner: BlockingRunner,
        agent: DeliveryAgent,
        queue: Any,
        tx: Transaction,
        prefixes: tuple[bytes, bytes],
    ) -> None:
        self._runner = runner
        self._agent = agent
        self._queue = queue
        self._tx = tx
        self._local_env = tx.local_envelope()
        self._remote_env = tx.remote_envelope() if queue is not None else None
        self._local_prefix, self._queue_prefix = prefixes
        self._delivery: Any = None
        self._queued: Any = None
        self._opened = False
        self._finished = False
        self._inflight: defer.Deferred[Any] | None = None

    # -- reactor side -----------------------------------------------------
    def _run(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d = self._runner.run(fn, *args)
        self._inflight = d

        def clear(result: Any) -> Any:
            if self._inflight is d:
                self._inflight = None
            return result

        d.addBoth(clear)
        return d

    def write(self, data: bytes) -> defer.Deferred[Any]:
        """Append content bytes (a batch of whole lines)."""
        return self._run(self._write, data)

    def finish(self, data: bytes) -> defer.Deferred[Outcome]:
        """Write the last bytes and commit every copy (see the module doc).
        Fails with the MailError of a failure that stored nothing."""
        self._finished = True  # abort() is a no-op from now on: no in-flight tracking
        d: defer.Deferred[Outcome] = self._runner.run(self._finish, data)
        return d

    def abort(self) -> None:
        """Remove whatever was written; safe to call at any time, once or more."""
        if self._finished:
            return
        self._finished = True
        pending = self._inflight

        def later(result: Any) -> Any:
            self._runner.run(self._abort).addErrback(lambda f: log.failure("abort failed", f))
            return result

        if pending is not None:
            pending.addBoth(later)
        else:
            later(None)

    # -- pool thread side ---------------------------------------------------
    def _write(self, data: bytes) -> None:
        if not self._opened:
            # The first write carries the trace fields; one write call each.
            self._opened = True
            if self._local_env is not None:
                self._delivery = self._agent.begin(self._local_env)
                self._delivery.write(self._local_prefix + data)
            if self._remote_env is not None:
                self._queued = self._queue.begin(self._remote_env)
                self._queued.write(self._queue_prefix + data)
            return
        if self._delivery is not None:
            self._delivery.write(data)
        if self._queued is not None:
            self._queued.write(data)

    def _finish(self, data: bytes) -> Outcome:
        try:
            self._write(data)
            results: list[DeliveryResult] = []
            if self._delivery is not None:
                results = self._delivery.commit(self._tx.local)
                self._delivery = None  # committed: nothing left to abort
            queue_id = ""
            queued: tuple[str, ...] = ()
            if self._queued is not None and self._remote_env is not None:
                if results and all(r.error is not None for r in results):
                    return Outcome(results, "", ())  # finally aborts the queue copy
                queue_id = self._queued.commit(list(self._remote_env.recipients))
                self._queued = None
                queued = tuple(self._tx.remote)
            return Outcome(results, queue_id, queued)
        finally:
            self._abort()

    def _abort(self) -> None:
        delivery, self._delivery = self._delivery, None
        queued, self._queued = self._queued, None
        for part in (delivery, queued):
            if part is not None:
                try:
                    part.abort()
                except Exception:
                    log.failure("aborting a partial message failed")
