"""Directory lookups of all sessions of one listener, run in batches.

RCPT (``Directory.resolve``) and the submission sender check are short
blocking calls into the one SQLite directory, which serialises its callers
on a lock.  Sent one runner call each, concurrent sessions queue on that
lock inside pool threads, and each holder is slowed further by the other
threads' turns at the GIL (with 20 busy sessions a RCPT waited ~10 ms).

:class:`LookupBatcher` keeps at most one runner call in flight per
listener: lookups that arrive meanwhile wait on the reactor thread and go
together in the next call, which runs them one after the other.  Each
caller still gets its own Deferred with its own result or failure, so
session code is unchanged apart from calling :meth:`LookupBatcher.run`
instead of ``context.runner.run``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

#: Most lookups carried by one runner call (the rest wait for the next).
MAX_BATCH = 64

_Call = tuple[Callable[..., Any], tuple[Any, ...]]


def _run_batch(calls: list[_Call]) -> list[tuple[bool, Any]]:
    """Pool thread: every call in order; an exception becomes that call's Failure."""
    results: list[tuple[bool, Any]] = []
    for fn, args in calls:
        try:
            results.append((True, fn(*args)))
        except Exception:
            results.append((False, Failure()))
    return results


class LookupBatcher:
    """Runs blocking lookups through ``context.runner``, one batch at a time."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._waiting: list[tuple[_Call, defer.Deferred[Any]]] = []
        self._busy = False

    def run(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """Like ``runner.run(fn, *args)``; the result arrives on the reactor thread."""
        d: defer.Deferred[Any] = defer.Deferred()
        self._waiting.append(((fn, args), d))
        if not self._busy:
            self._next()
        return d

    def _next(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        self._busy = True
        calls = [call for call, _ in batch]
        done = self._context.runner.run(_run_batch, calls)
        done.addBoth(self._finished, [d for _, d in batch])

    def _finished(self, results: Any, waiters: list[defer.Deferred[Any]]) -> None:
        # Callbacks may queue new lookups: they wait for the next batch.
        for i, d in enumerate(waiters):
            if isinstance(results, Failure):
                d.errback(results)
            else:
                ok, value = results[i]
                d.callback(value) if ok else d.errback(value)
        self._busy = False
        if self._waiting:
            self._next()
