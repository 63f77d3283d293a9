"""The server process: one ``MultiService`` with a named child per listener.

``make_service`` builds the shared :class:`ServerContext` and one
:class:`mailsuite.listeners.Listener` per configured listener (name = role).
A listener configured as ``""`` is not started.  Implicit-TLS roles wrap
their factory in ``TLSMemoryBIOFactory`` with the shared, reloadable TLS
contexts.  With ``server.workers`` above 1 the primary also runs a
:class:`mailsuite.workers.WorkerPool` (named "workers"), and each child
builds the same service over the inherited sockets (``inherited``).

Shutdown (SIGTERM/SIGINT, handled by twistd) stops the child processes
first, then the listeners, then the thread pool (pending disk work
finishes) and closes the directory.  SIGHUP reloads the TLS certificate
files (and is passed on to the children).
"""

from __future__ import annotations

import importlib
import signal
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.listeners import InheritedEndpoint, Listener, family_name
from mailsuite.protocol.lines import ConnectionLimiter
from mailsuite.storage.changes import ChangeHub
from mailsuite.threads import ThreadPoolRunner
from mailsuite.tls import TLSContexts
from mailsuite.workers import WorkerPool, child_argv, split_limit, worker_count

log = Logger()

#: role -> (module with ``make_factory(context, role, implicit_tls)``, implicit TLS)
ROLES: dict[str, tuple[str, bool]] = {
    "smtp": ("mailsuite.smtp.server", False),
    "submission": ("mailsuite.smtp.server", False),
    "submissions": ("mailsuite.smtp.server", True),
    "pop3": ("mailsuite.pop3.server", False),
    "pop3s": ("mailsuite.pop3.server", True),
    "imap": ("mailsuite.imap.server", False),
    "imaps": ("mailsuite.imap.server", True),
}


def build_context(
    config: Config,
    reactor: Any,
    runner: Any = None,
    tls: Any = None,
    *,
    processes: int = 1,
    worker: int = 0,
) -> ServerContext:
    """Open the store, directory, delivery agent and authenticator.

    ``runner`` defaults to a thread pool and ``tls`` to the configured
    :class:`TLSContexts`; unit tests pass an inline runner and a stand-in.
    ``processes`` is how many server processes share the listeners (each
    gets its share of the connection limits); ``worker`` is this one's
    index (0: the primary).
    Raises :class:`mailsuite.errors.ConfigError` for unusable TLS files.
    """
    from mailsuite.delivery.agent import MaildirDeliveryAgent
    from mailsuite.storage.store import MaildirStore
    from mailsuite.storage.watch import FolderWatcher
    from mailsuite.users.auth import DirectoryAuthenticator
    from mailsuite.users.directory import SQLiteDirectory

    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    runner = runner if runner is not None else ThreadPoolRunner(reactor)
    hub = ChangeHub(reactor)
    directory = SQLiteDirectory(data / "users.sqlite", config.users)

    def quota_lookup(address: str) -> tuple[int, int]:
        user = directory.get_user(address)
        return (user.quota_bytes, user.quota_messages) if user else (0, 0)

    store = MaildirStore(
        data / "mail",
        hub=hub,
        quota_lookup=quota_lookup,
        header_cache_bytes=config.imap.header_cache_mb * 1024 * 1024,
        body_cache_bytes=config.imap.body_cache_mb * 1024 * 1024,
    )

    agent = MaildirDeliveryAgent(store, quota_lookup=quota_lookup)
    if worker == 0:
        agent.clean_spool()  # debris of transactions a crash cut short
    auth = DirectoryAuthenticator(directory, runner, reactor, config.auth)
    if tls is None:
        tls = TLSContexts(config.tls, config.server.hostname, data)
    limiter = ConnectionLimiter(
        split_limit(config.limits.max_connections, processes),
        split_limit(config.limits.max_connections_per_ip, processes),
    )
    return ServerContext(
        reactor=reactor,
        config=config,
        runner=runner,
        store=store,
        directory=directory,
        agent=agent,
        auth=auth,
        hub=hub,
        tls=tls,
        limiter=limiter,
        watcher=FolderWatcher(reactor, runner, config.imap.idle_poll_interval),
        worker=worker,
    )


def make_factory(context: ServerContext, role: str) -> Any:
    """The protocol factory for ``role``, TLS-wrapped for implicit-TLS roles."""
    module, implicit_tls = ROLES[role]
    factory: Any = importlib.import_module(module).make_factory(context, role, implicit_tls)
    if implicit_tls:
        factory = TLSMemoryBIOFactory(context.tls.server_options(), False, factory)
    return factory


class MailService(service.MultiService):
    """The top service; owns the context's thread pool and signal handling."""

    def __init__(self, context: ServerContext) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.context = context
        self._old_sighup: Any = None

    def startService(self) -> None:
        runner = self.context.runner
        if isinstance(runner, ThreadPoolRunner):
            runner.start()
        if self.context.tls is not None and hasattr(signal, "SIGHUP"):
            self._old_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        try:
            super().startService()  # type: ignore[no-untyped-call]
        except BaseException:
            if isinstance(runner, ThreadPoolRunner):
                runner.stop()  # its threads would keep the process alive
            raise

    def _on_sighup(self, signum: int, frame: Any) -> None:
        self.context.reactor.callFromThread(self.context.tls.reload)
        pool = self.namedServices.get("workers")
        if pool is not None:
            self.context.reactor.callFromThread(pool.signal_all, signal.SIGHUP)

    def stopService(self) -> Any:
        d = super().stopService()  # type: ignore[no-untyped-call]

        def cleanup(result: Any) -> Any:
            watcher = getattr(self.context, "watcher", None)
            if watcher is not None:
                watcher.close()
            runner = self.context.runner
            if isinstance(runner, ThreadPoolRunner):
                runner.stop()
            close = getattr(self.context.directory, "close", None)
            if callable(close):
                close()
            if self._old_sighup is not None:
                signal.signal(signal.SIGHUP, self._old_sighup)
            log.info("mailsuite stopped")
            return result

        if d is None:
            return cleanup(None)
        return d.addBoth(cleanup)


def make_service(
    config: Config,
    reactor: Any,
    demo: bool = False,
    *,
    config_path: str | None = None,
    inherited: dict[str, tuple[int, str]] | None = None,
    worker: int = 0,
) -> MailService:
    """The whole server.  ``demo`` seeds the demonstration account.

    The primary (``inherited`` None) binds the configured listeners and,
    with ``server.workers`` above 1, starts the child processes, which
    re-read ``config_path``.  A child (``worker`` >= 1) adopts the listening
    sockets in ``inherited`` (role -> (fd, family name)) instead.
    """
    processes = worker_count(config.server.workers)
    context = build_context(config, reactor, processes=processes, worker=worker)
    if demo:
        from mailsuite.demo import seed_demo

        seed_demo(context, Path(__file__).resolve().parent.parent / "maildir-sample")
    top = MailService(context)
    # Before the listeners: context.queue exists before any SMTP factory, and
    # the queue service (started first) is stopped last.
    from mailsuite.delivery.queue import attach

    attach(context, top)
    listeners: list[Listener] = []
    for role in ROLES:
        if inherited is not None:
            if role not in inherited:
                continue
            fd, family = inherited[role]
            endpoint: Any = InheritedEndpoint(reactor, fd, family)
        else:
            desc = getattr(config.listeners, role)
            if not desc:
                continue
            endpoint = endpoints.serverFromString(reactor, desc)
        # shared with other processes: accept one connection per wake-up
        shared = reactor if processes > 1 else None
        child = Listener(endpoint, make_factory(context, role), shared_clock=shared)
        child.setName(role)  # type: ignore[no-untyped-call]
        child.setServiceParent(top)  # type: ignore[no-untyped-call]
        listeners.append(child)
    if processes > 1 and not worker:
        _add_worker_pool(top, reactor, config, config_path, listeners, processes)
    log.info(
        "mailsuite starting: data dir {data}, hostname {host}, {n} process(es)",
        data=str(config.data_dir),
        host=config.server.hostname,
        n=processes,
    )
    return top


def _add_worker_pool(
    top: MailService,
    reactor: Any,
    config: Config,
    config_path: str | None,
    listeners: list[Listener],
    processes: int,
) -> None:
    """Add the primary's pool that starts the other processes on ``listeners``' sockets."""

    def sockets() -> list[tuple[int, str]]:
        return [
            (lst.port.fileno(), f"{lst.name}:{family_name(lst.port)}")
            for lst in listeners
            if lst.port is not None
        ]

    data_dir = str(Path(config.server.data_dir).resolve())
    path = str(Path(config_path).resolve()) if config_path else None
    pool = WorkerPool(
        reactor,
        processes,
        sockets,
        lambda index, fds: child_argv(path, data_dir, index, fds),
    )
    pool.setName("workers")  # type: ignore[no-untyped-call]
    pool.setServiceParent(top)  # type: ignore[no-untyped-call]
