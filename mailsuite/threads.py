"""The one seam through which blocking work leaves the reactor thread.

DESIGN.md §2: blocking file I/O (fsync above all) and password hashing run in
a thread pool; the reactor thread never waits on the disk for another user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class ThreadPoolRunner:
    """Runs callables in a :class:`ThreadPool`; results come back on the reactor thread.

    The pool is started by :meth:`start` and stopped by :meth:`stop` (the
    service does both).  Implements :class:`mailsuite.interfaces.BlockingRunner`.
    """

    def __init__(
        self, reactor: IReactorThreads, minthreads: int = 2, maxthreads: int = 16
    ) -> None:
        self._reactor = reactor
        self.pool = ThreadPool(minthreads, maxthreads, name="mailsuite-io")

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> defer.Deferred[T]:
        return threads.deferToThreadPool(self._reactor, self.pool, fn, *args, **kw)  # type: ignore[arg-type]


class InlineRunner:
    """Runs callables synchronously: for unit tests over ``StringTransport``
    and for the admin command, which has no reactor."""

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> defer.Deferred[T]:
        return defer.maybeDeferred(fn, *args, **kw)
