"""The outbound queue: durable intake and the queue runner (issue 6).

Intake (used by SMTP submission through ``context.runner``)::

    msg = queue.begin(envelope)      # blocking
    msg.write(data) ...              # blocking, CRLF, dot-unstuffed
    queue_id = msg.commit(rcpts)     # blocking: durable before it returns
    # (or msg.abort())

``commit`` returns only after the message file and the entry's state are
fsynced and renamed into place (:mod:`mailsuite.delivery.queue_store`), so
the SMTP server may answer 250 afterwards.  Local and remote recipients may
both be queued; local ones are handed to the delivery agent by the runner.

The runner (:meth:`OutboundQueue.start`, or :class:`QueueService` in the
server) keeps an in-memory schedule ``id -> next attempt`` filled by a scan
of ``env/`` every ``queue.scan_interval`` seconds (that is how
``mailsuite-admin queue flush|retry`` reach a running server) and by
commits.  Due entries are locked (``flock``: several processes may share a
queue directory) and attempted (:mod:`mailsuite.delivery.queue_attempt`);
at most ``queue.max_concurrent`` entries are attempted at once, and the
relay limits connections in total and per destination.  Time comes from
``clock`` (the reactor unless a test passes a ``task.Clock``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from mailsuite.config import QueueConfig
from mailsuite.delivery.queue_attempt import Attempt
from mailsuite.delivery.queue_mx import make_resolver
from mailsuite.delivery.queue_store import EntryLock, QueuedMessage, QueueEntry, QueueStore
from mailsuite.delivery.relay import Relay
from mailsuite.errors import ConfigError, ErrorKind, MailError
from mailsuite.interfaces import BlockingRunner, DeliveryAgent, Directory, Envelope

log = Logger()


def _read_password(path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text().strip("\r\n")
    except OSError as e:
        raise ConfigError(f"queue.smarthost_password_file: cannot read {path}: {e.strerror}")


class OutboundQueue:
    """The queue of one server process (see the module docstring)."""

    def __init__(
        self,
        queue_dir: Path,
        config: QueueConfig,
        reactor: Any,
        runner: BlockingRunner,
        agent: DeliveryAgent,
        directory: Directory,
        hostname: str,
        resolver: Any = None,
        *,
        clock: Any = None,
    ) -> None:
        self.store = QueueStore(queue_dir)
        self.config = config
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.runner = runner
        self.agent = agent
        self.directory = directory
        self.hostname = hostname
        if resolver is None:
            resolver = make_resolver(config.resolver, reactor)
        password = _read_password(config.smarthost_password_file)
        self.relay = Relay(config, reactor, self.clock, runner, hostname, resolver, password)
        self._schedule: dict[str, float] = {}
        self._active: dict[str, defer.Deferred[None]] = {}
        self._timer: Any = None
        self._loop: task.LoopingCall | None = None
        self._running = False
        self._scanning = False
        self._idle_waiters: list[defer.Deferred[None]] = []

    # -- intake (blocking; called in the thread pool) --------------------------
    def begin(self, envelope: Envelope) -> QueuedMessage:
        """Open a queue file for a message from ``envelope.mail_from``.  Blocking."""
        return self.store.begin(envelope, self.clock.seconds(), on_commit=self._committed)

    def _committed(self, queue_id: str) -> None:
        call = getattr(self.reactor, "callFromThread", None)
        if call is None:  # a task.Clock in unit tests: no threads there
            self.clock.callLater(0, self._arrived, queue_id)
        else:
            call(self._arrived, queue_id)

    def _arrived(self, queue_id: str) -> None:
        self._schedule[queue_id] = 0.0
        self._dispatch()

    # -- running -------------------------------------------------------------------
    def start(self) -> None:
        """Start the runner: scan now and every ``scan_interval`` seconds."""
        if self._running:
            return
        self._running = True
        self.relay.stopping = False
        self._loop = task.LoopingCall(self.scan)
        self._loop.clock = self.clock
        self._loop.start(self.config.scan_interval, now=True).addErrback(
            lambda f: log.failure("queue scan loop stopped", f)
        )

    def stop(self) -> defer.Deferred[None]:
        """Stop attempting; open connections are dropped (their recipients
        stay pending).  Fires when running attempts have saved their state."""
        self._running = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._cancel_timer()
        self.relay.stop()
        d: defer.Deferred[Any] = defer.DeferredList(
            list(self._active.values()), consumeErrors=True
        )
        return d.addCallback(lambda _: None)

    def scan(self) -> defer.Deferred[None]:
        """Re-read the queue directory's schedule, then start due attempts."""
        if self._scanning:
            return defer.succeed(None)
        self._scanning = True

        def scanned(found: dict[str, float]) -> None:
            for queue_id, due in found.items():
                if queue_id not in self._active:
                    self._schedule[queue_id] = due
            for queue_id in list(self._schedule):
                if queue_id not in found and queue_id not in self._active:
                    del self._schedule[queue_id]
            self._dispatch()

        def failed(f: Any) -> None:
            log.failure("queue scan failed", f)

        def done(result: Any) -> None:
            self._scanning = False

        d: defer.Deferred[Any] = self.runner.run(self._scan_files)
        d.addCallbacks(scanned, failed)
        d.addBoth(done)
        return d

    def _scan_files(self) -> dict[str, float]:
        for name in self.store.cleanup(time.time()):
            log.info("queue: removed leftover {name}", name=name)
        return self.store.scan()

    def flush(self) -> None:
        """Make every known entry due now (reactor thread)."""
        for queue_id in self._schedule:
            self._schedule[queue_id] = 0.0
        self._dispatch()

    def wait_idle(self) -> defer.Deferred[None]:
        """Fires when no attempt runs and none is due (for tests and tools)."""
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        self._check_idle()
        return d

    # -- scheduling ------------------------------------------------------------------
    def _dispatch(self) -> None:
        self._cancel_timer()
        if not self._running:
            return
        now = self.clock.seconds()
        waiting = [(t, q) for q, t in self._schedule.items() if q not in self._active]
        for due, queue_id in sorted(waiting):
            if due > now or len(self._active) >= self.config.max_concurrent:
                break
            self._start_attempt(queue_id)
        future = [t for q, t in self._schedule.items() if q not in self._active and t > now]
        if future:
            self._timer = self.clock.callLater(min(future) - now, self._dispatch)
        self._check_idle()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _check_idle(self) -> None:
        if not self._idle_waiters or self._active or self._scanning:
            return
        now = self.clock.seconds()
        if self._running and any(t <= now for t in self._schedule.values()):
            return
        waiters, self._idle_waiters = self._idle_waiters, []
        for d in waiters:
            d.callback(None)

    def _start_attempt(self, queue_id: str) -> None:
        d = defer.Deferred.fromCoroutine(self._attempt(queue_id))
        self._active[queue_id] = d

        def finished(result: Any) -> None:
            del self._active[queue_id]
            if isinstance(result, Exception) or hasattr(result, "getTraceback"):
                log.failure("{qid}: attempt failed", result, qid=queue_id)
                self._schedule[queue_id] = self.clock.seconds() + self.config.retry_schedule[0]
            self._dispatch()

        d.addBoth(finished)

    def _claim(self, queue_id: str) -> tuple[QueueEntry, EntryLock] | None:
        lock = self.store.lock(queue_id)
        if lock is None:
            return None
        try:
            return self.store.load(queue_id), lock
        except BaseException:
            lock.release()
            raise

    async def _attempt(self, queue_id: str) -> None:
        now = self.clock.seconds()
        try:
            claimed = await self.runner.run(self._claim, queue_id)
        except MailError as e:
            if e.kind is ErrorKind.NONEXISTENT:
                self._schedule.pop(queue_id, None)
            else:
                log.error("{qid}: cannot read queue entry: {err}", qid=queue_id, err=str(e))
                self._schedule[queue_id] = now + self.config.retry_schedule[-1]
            return
        if claimed is None:  # another process is delivering it
            self._schedule[queue_id] = now + self.config.scan_interval
            return
        entry, lock = claimed
        try:
            if entry.next_attempt > now and self._schedule.get(queue_id, 0.0) > 0.0:
                self._schedule[queue_id] = entry.next_attempt  # rescheduled elsewhere
                return
            attempt = Attempt(self, entry)
            removed = await attempt.run()
            for new_id in attempt.new_entries:
                self._schedule[new_id] = 0.0
            if removed:
                self._schedule.pop(queue_id, None)
            else:
                self._schedule[queue_id] = entry.next_attempt
        finally:
            await self.runner.run(lock.release)


class QueueService(service.Service):
    """Runs the queue inside the server's MultiService."""

    def __init__(self, queue: OutboundQueue) -> None:
        self.queue = queue

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self.queue.start()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        return self.queue.stop()


def attach(context: Any, top_service: Any) -> OutboundQueue:
    """Create the queue in ``<data>/queue``, set ``context.queue`` and add a
    :class:`QueueService` named "queue" to ``top_service``."""
    cfg = context.config
    queue = OutboundQueue(
        cfg.data_dir / "queue",
        cfg.queue,
        context.reactor,
        context.runner,
        context.agent,
        context.directory,
        cfg.server.hostname,
    )
    context.queue = queue
    child = QueueService(queue)
    child.setName("queue")  # type: ignore[no-untyped-call]
    child.setServiceParent(top_service)  # type: ignore[no-untyped-call]
    return queue
