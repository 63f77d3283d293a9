"""Output flow control shared by every long writer (IMAP FETCH, the queue's
SMTP client, ...).

Register a :class:`WriteGate` as a streaming (push) producer while writing a
long answer; ``await gate.wait()`` between chunks returns at once unless the
transport asked us to pause, and otherwise when it resumes.  Bounded memory
for slow readers without blocking the reactor.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


@implementer(IPushProducer)
class WriteGate:
    """Tracks the transport's pause/resume requests; ``stopProducing``
    (connection lost) releases every waiter."""

    def __init__(self) -> None:
        self.paused = False
        self._waiters: list[defer.Deferred[None]] = []

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def stopProducing(self) -> None:
        self.resumeProducing()

    def wait(self) -> defer.Deferred[None]:
        """Fires now if not paused, else when the transport resumes."""
        if not self.paused:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        return d
