"""The thread seam: results and failures come back on the reactor thread, and
stop() finishes every queued job."""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest

from mailsuite.threads import ThreadPoolRunner


class RunnerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.runner = ThreadPoolRunner(reactor, maxthreads=4)
        self.runner.start()
        self.addCleanup(self.runner.stop)

    @defer.inlineCallbacks
    def test_results_on_reactor_thread(self) -> Any:
        main = threading.get_ident()
        seen: list[int] = []

        def job(n: int) -> tuple[int, int]:
            return n * n, threading.get_ident()

        results = yield defer.gatherResults([self.runner.run(job, n) for n in range(200)])
        self.assertEqual([r[0] for r in results], [n * n for n in range(200)])
        self.assertTrue(all(r[1] != main for r in results))

        d = self.runner.run(job, 3)
        d.addCallback(lambda _: seen.append(threading.get_ident()))
        yield d
        self.assertEqual(seen, [main])

    @defer.inlineCallbacks
    def test_exception_fails_the_deferred(self) -> Any:
        def boom() -> None:
            raise ValueError("no")

        with self.assertRaises(ValueError):
            yield self.runner.run(boom)
        # the worker survived
        self.assertEqual((yield self.runner.run(lambda: 7)), 7)


def test_stop_finishes_queued_jobs() -> None:
    runner = ThreadPoolRunner(reactor, maxthreads=2)
    runner.start()
    done: list[int] = []
    gate = threading.Event()

    def slow(n: int) -> None:
        gate.wait(5)
        done.append(n)

    for n in range(10):
        runner.run(slow, n)
    gate.set()
    runner.stop()
    assert sorted(done) == list(range(10))


def _settle(d: defer.Deferred[Any]) -> Any:
    """Run the reactor's thread-call queue until ``d`` fired (no reactor.run)."""
    import time

    out: list[Any] = []
    d.addBoth(out.append)
    deadline = time.monotonic() + 10
    while not out and time.monotonic() < deadline:
        reactor.runUntilCurrent()  # type: ignore[attr-defined]
        time.sleep(0.001)
    assert out, "job did not finish"
    return out[0]


def test_sequential_jobs_reuse_one_thread() -> None:
    runner = ThreadPoolRunner(reactor, maxthreads=8)
    runner.start()
    try:
        names = {_settle(runner.run(lambda: threading.current_thread().name)) for _ in range(30)}
    finally:
        runner.stop()
    assert len(names) == 1


def test_jobs_before_start_wait_for_it_and_threads_stay_bounded() -> None:
    runner = ThreadPoolRunner(reactor, maxthreads=3)
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1

    for _ in range(12):
        runner.run(job)
    assert running == 0  # nothing runs before start()
    runner.start()
    gate.set()
    runner.stop()
    assert 1 <= peak <= 3
