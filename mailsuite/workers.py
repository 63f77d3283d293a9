"""Several server processes on one host, sharing the listening sockets.

Python runs one thread at a time per process, so one process uses one core
however many threads it has.  With ``server.workers`` above 1 the twistd
process (the *primary*) binds every listener as usual, serves connections
itself, and starts ``workers - 1`` children (``python -m mailsuite.worker``)
that inherit the listening sockets and accept on them too: the kernel hands
each new connection to whichever process calls ``accept`` first, and each
process accepts one connection per wake-up (:func:`accept_one_at_a_time`),
so a busy process leaves new connections to an idle one.

Every process is a complete server (DESIGN.md §2 "Scale-out": a process is
stateless apart from the store and the directory): its own thread pool,
directory connection, delivery agent, outbound-queue runner (queue entries
are ``flock``-ed, so runners in several processes never attempt one entry
twice) and IDLE watcher (inotify sees other processes' changes).  Per
process, and so divided between the processes: the connection limits
(:func:`split_limit`).  Per process and not divided: the failed-login
throttle and the login cache.

Contract of :class:`WorkerPool` (a service of the primary):

* children start after the listeners are bound (and after twistd dropped
  privileges: they run as the same user as the primary);
* a child's log events arrive as JSON records on its stdout and are
  re-published in the primary's log with ``log_system``
  ``worker-N namespace#level``; its stderr is logged line by line;
* a child that exits while the pool runs is started again after a delay
  that doubles (1 s up to 60 s) while it keeps failing within 10 s;
* ``stopService`` sends SIGTERM to every child and fires when all exited
  (SIGKILL after ``stop_timeout`` seconds); SIGHUP is forwarded by
  :meth:`WorkerPool.signal_all`;
* a child whose primary died sees EOF on its stdin and stops itself.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.logger import Logger, eventFromJSON, globalLogPublisher

log = Logger()

MAX_AUTO_WORKERS = 8
ACCEPT_PAUSE = 0.002  # seconds a process leaves a socket to the others after an accept
_RECORD = b"\x1e"  # jsonFileLogObserver: "\x1e" JSON "\n" per event


def worker_count(configured: int) -> int:
    """Processes to run: ``configured``, or for 0 one per usable CPU core
    (at most :data:`MAX_AUTO_WORKERS`)."""
    if configured > 0:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_WORKERS))


def split_limit(limit: int, processes: int) -> int:
    """One process's share of a connection limit (rounded up: at least 1)."""
    return max(1, math.ceil(limit / max(1, processes)))


def accept_one_at_a_time(port: Any, clock: Any, pause: float = ACCEPT_PAUSE) -> None:
    """Share a listening ``tcp.Port``/``unix.Port`` with the other processes.

    Twisted accepts up to 100 connections per wake-up, and the kernel wakes
    the processes waiting on a socket in a fixed order, so an idle primary
    would take every connection.  Here a process accepts one connection per
    wake-up and then leaves the socket to the others for ``pause`` seconds
    (a burst of connections alternates between the processes; a busy
    process, slow to come back to its event loop, takes fewer).  Ports
    without ``numberAccepts``/``sessionno`` are left alone.
    """
    if not hasattr(port, "numberAccepts") or not hasattr(port, "sessionno"):
        return
    original = port.doRead

    def resume() -> None:
        if port.connected and not port.disconnecting:
            port.startReading()

    def do_read() -> Any:
        port.numberAccepts = 1
        before = port.sessionno
        result = original()
        if port.sessionno != before and port.connected:
            port.stopReading()
            clock.callLater(pause, resume)
        return result

    port.doRead = do_read


class _ChildProtocol(protocol.ProcessProtocol):
    """One child: relays its log and reports its end to the pool."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self._out = b""
        self._err = b""
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self._out += data
        *records, self._out = self._out.split(b"\n")
        for record in records:
            self._publish(record)

    def _publish(self, record: bytes) -> None:
        text = record.strip().lstrip(_RECORD)
        if not text:
            return
        try:
            event = eventFromJSON(text.decode("utf-8", "replace"))
        except (ValueError, json.JSONDecodeError):
            log.warn("worker-{n}: unreadable log record", n=self.index)
            return
        level = getattr(event.get("log_level"), "name", "-")
        namespace = event.get("log_namespace", "-")
        event["log_system"] = f"worker-{self.index} {namespace}#{level}"
        globalLogPublisher(event)

    def errReceived(self, data: bytes) -> None:
        self._err += data
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            if line.strip():
                log.warn(
                    "worker-{n} stderr: {line}",
                    n=self.index,
                    line=line.decode("utf-8", "replace").rstrip(),
                )

    def processEnded(self, reason: Any) -> None:
        if self._out.strip():
            self._publish(self._out)
        self.pool.child_ended(self, reason)
        self.ended.callback(None)


class WorkerPool(service.Service):
    """Starts and supervises the child processes (see the module docstring).

    ``argv_for(index, fds)`` builds a child's command line from the child
    file descriptors of the inherited sockets; ``sockets`` is a callable
    returning ``(parent_fd, description)`` pairs, read when the pool starts
    (the listeners are bound by then).
    """

    stop_timeout = 10.0

    def __init__(
        self,
        reactor: Any,
        count: int,
        sockets: Callable[[], list[tuple[int, str]]],
        argv_for: Callable[[int, list[str]], list[str]],
    ) -> None:
        self.reactor = reactor
        self.count = count
        self.sockets = sockets
        self.argv_for = argv_for
        self.children: dict[int, Any] = {}  # index -> IProcessTransport
        self._protocols: dict[int, _ChildProtocol] = {}
        self._started_at: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._pending: dict[int, Any] = {}  # index -> delayed restart call

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        for index in range(1, self.count):
            self._spawn(index)
        log.info("started {n} worker processes", n=self.count - 1)

    def _spawn(self, index: int) -> None:
        self._pending.pop(index, None)
        if not self.running:
            return
        child_fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        described = []
        for k, (fd, description) in enumerate(self.sockets()):
            child_fds[3 + k] = fd
            described.append(f"{3 + k}:{description}")
        proto = _ChildProtocol(self, index)
        argv = self.argv_for(index, described)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        transport = self.reactor.spawnProcess(proto, argv[0], argv, env=env, childFDs=child_fds)
        self.children[index] = transport
        self._protocols[index] = proto
        self._started_at[index] = self.reactor.seconds()

    def child_ended(self, proto: _ChildProtocol, reason: Any) -> None:
        index = proto.index
        if self._protocols.get(index) is not proto:
            return
        self.children.pop(index, None)
        self._protocols.pop(index, None)
        if not self.running:
            return
        code = getattr(reason.value, "exitCode", None)
        sig = getattr(reason.value, "signal", None)
        lived = self.reactor.seconds() - self._started_at.get(index, 0.0)
        delay = 1.0 if lived > 10.0 else min(60.0, 2 * self._delay.get(index, 0.5))
        self._delay[index] = delay
        log.error(
            "worker-{n} ended (exit {code}, signal {sig}); restarting in {delay:.0f} s",
            n=index,
            code=code,
            sig=sig,
            delay=delay,
        )
        self._pending[index] = self.reactor.callLater(delay, self._spawn, index)

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every running child (SIGHUP: reload TLS)."""
        for transport in list(self.children.values()):
            try:
                transport.signalProcess(int(signum))
            except Exception:  # already gone: processEnded follows
                pass

    def stopService(self) -> defer.Deferred[Any]:
        super().stopService()  # type: ignore[no-untyped-call]
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        waiting = [p.ended for p in self._protocols.values()]
        self.signal_all(signal.SIGTERM)
        timer = self.reactor.callLater(self.stop_timeout, self.signal_all, signal.SIGKILL)
        done: defer.Deferred[Any] = defer.DeferredList(waiting, consumeErrors=True)

        def finished(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        return done.addBoth(finished)


def child_argv(
    config_path: str | None, data_dir: str, index: int, sockets: list[str]
) -> list[str]:
    """The command line of child ``index`` (see :mod:`mailsuite.worker`)."""
    argv = [sys.executable, "-m", "mailsuite.worker", "--index", str(index)]
    argv += ["--data-dir", data_dir]
    if config_path:
        argv += ["--config", config_path]
    for item in sockets:
        argv += ["--listen", item]
    return argv
