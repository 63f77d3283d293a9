"""The one seam through which blocking work leaves the reactor thread.

DESIGN.md §2: blocking file I/O (fsync above all) and password hashing run in
a thread pool; the reactor thread never waits on the disk for another user.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")

_Job = tuple["defer.Deferred[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _Worker:
    """One pool thread; ``wake`` is held while it sleeps (a binary semaphore)."""

    def __init__(self, runner: ThreadPoolRunner, job: _Job | None, name: str) -> None:
        self.runner = runner
        self.job = job
        self.wake = threading.Lock()
        self.wake.acquire()
        self.thread = threading.Thread(target=self.loop, name=name, daemon=True)

    def loop(self) -> None:
        call = self.runner.reactor.callFromThread
        job = self.job
        while job is not None:
            d, fn, args, kw = job
            job = None
            try:
                result = fn(*args, **kw)
            except BaseException:
                call(d.errback, Failure())
            else:
                call(d.callback, result)
            del d, fn, args, kw
            job = self.runner.next_job(self)


class ThreadPoolRunner:
    """Runs callables in up to ``maxthreads`` threads; results come back on
    the reactor thread (``reactor.callFromThread``).

    A job goes to the most recently idle thread (a stack, not a queue), so
    a light load keeps running on the same one or two threads and their
    malloc arenas instead of spreading over all of them; threads are
    started on demand and kept.  Jobs beyond ``maxthreads`` wait in FIFO
    order.  One lock guards the idle stack and the waiting jobs; a job costs
    one lock round and one thread wake-up (Twisted's ThreadPool costs about
    four times that in CPU).  Jobs run before :meth:`start` wait for it;
    :meth:`stop` finishes every queued job, then ends the threads (the
    service calls both).  Implements
    :class:`mailsuite.interfaces.BlockingRunner`.
    """

    def __init__(self, reactor: Any, maxthreads: int = 16) -> None:
        self.reactor = reactor
        self.maxthreads = max(1, maxthreads)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._waiting: deque[_Job] = deque()
        self._workers: list[_Worker] = []
        self._started = False
        self._stopping = False

    def start(self) -> None:
        with self._lock:
            self._started = True
            self._stopping = False
            while self._waiting and len(self._workers) < self.maxthreads:
                self._spawn(self._waiting.popleft())

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> defer.Deferred[T]:
        d: defer.Deferred[T] = defer.Deferred()
        job: _Job = (d, fn, args, kw)
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.wake.release()
            elif self._started and not self._stopping and len(self._workers) < self.maxthreads:
                self._spawn(job)
            else:
                self._waiting.append(job)
        return d

    def _spawn(self, job: _Job) -> None:
        """Start a thread for ``job`` (lock held)."""
        worker = _Worker(self, job, f"mailsuite-io-{len(self._workers)}")
        self._workers.append(worker)
        worker.thread.start()

    def next_job(self, worker: _Worker) -> _Job | None:
        """Pool thread: the next job for ``worker`` (sleeping until there is
        one), or None when the runner stops."""
        with self._lock:
            if self._waiting:
                return self._waiting.popleft()
            if self._stopping:
                return None
            worker.job = None
            self._idle.append(worker)
        worker.wake.acquire()
        return worker.job

    def stop(self) -> None:
        """Finish the queued jobs, then end and join every thread."""
        with self._lock:
            self._stopping = True
            idle, self._idle = self._idle, []
            workers = list(self._workers)
        for worker in idle:
            worker.job = None
            worker.wake.release()
        for worker in workers:
            worker.thread.join()
        with self._lock:
            self._workers = []
            self._started = False


class InlineRunner:
    """Runs callables synchronously: for unit tests over ``StringTransport``
    and for the admin command, which has no reactor."""

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> defer.Deferred[T]:
        return defer.maybeDeferred(fn, *args, **kw)
