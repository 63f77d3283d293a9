"""``python -m mailsuite.worker``: one child server process (see :mod:`mailsuite.workers`).

Started by the primary's :class:`mailsuite.workers.WorkerPool`, never by
hand.  Command line::

    python -m mailsuite.worker --index N --data-dir DIR [--config FILE]
        --listen FD:ROLE:FAMILY ...

It loads the same configuration as the primary, builds the same service
over the inherited listening sockets (:func:`mailsuite.service.make_service`
with ``inherited``), writes its log as JSON records on stdout (the primary
re-publishes them), stops on SIGTERM/SIGINT like twistd, and stops by itself
when its stdin reaches EOF (the primary is gone).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, cast

from twisted.internet.error import ReactorNotRunning
from twisted.logger import ILogObserver, Logger, globalLogBeginner, jsonFileLogObserver

log = Logger()


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m mailsuite.worker")
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--listen", action="append", default=[], metavar="FD:ROLE:FAMILY")
    return ap.parse_args(argv)


def inherited_sockets(items: list[str]) -> dict[str, tuple[int, str]]:
    """``FD:ROLE:FAMILY`` items -> {role: (fd, family)}; ValueError if malformed."""
    found: dict[str, tuple[int, str]] = {}
    for item in items:
        fd, role, family = item.split(":")
        found[role] = (int(fd), family)
    return found


class ParentWatch:
    """Reads the child's stdin (a pipe from the primary); EOF stops the reactor."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.stopping = False

    def fileno(self) -> int:
        return 0

    def logPrefix(self) -> str:
        return "parent-watch"

    def doRead(self) -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.reactor.removeReader(self)
            self._gone()

    def connectionLost(self, reason: Any) -> None:
        """The reactor saw the pipe hang up (the primary is gone)."""
        self._gone()

    def _gone(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.warn("primary process gone: stopping")
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass  # already stopping (SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor

    from mailsuite import config as config_mod
    from mailsuite.errors import ConfigError
    from mailsuite.service import make_service

    observer = cast(ILogObserver, jsonFileLogObserver(sys.stdout))
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    try:  # the file may have changed since the primary read it
        cfg = config_mod.load(args.config).with_data_dir(args.data_dir)
    except ConfigError as e:
        log.error("worker {n}: {error}", n=args.index, error=str(e))
        return 78  # EX_CONFIG; the primary logs the exit and retries later
    top = make_service(
        cfg,
        reactor,
        config_path=args.config,
        inherited=inherited_sockets(args.listen),
        worker=args.index,
    )
    top.privilegedStartService()  # type: ignore[no-untyped-call]
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    os.set_blocking(0, False)
    reactor.addReader(ParentWatch(reactor))
    log.info("worker {n} (pid {pid}) running", n=args.index, pid=os.getpid())
    reactor.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
