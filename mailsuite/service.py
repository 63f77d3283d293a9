"""The server process: one ``MultiService`` with a named child per listener.

``make_service`` builds the shared :class:`ServerContext` and one
``StreamServerEndpointService`` per configured listener (name = role).  A
listener configured as ``""`` is not started.  Implicit-TLS roles wrap their
factory in ``TLSMemoryBIOFactory`` with the shared, reloadable TLS contexts.

Shutdown (SIGTERM/SIGINT, handled by twistd) stops the listeners first, then
the thread pool (pending disk work finishes) and closes the directory.
SIGHUP reloads the TLS certificate files.
"""

from __future__ import annotations

import importlib
import signal
from pathlib import Path
from typing import Any

from twisted.application import internet, service
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.protocol.lines import ConnectionLimiter
from mailsuite.storage.changes import ChangeHub
from mailsuite.threads import ThreadPoolRunner
from mailsuite.tls import TLSContexts

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
    config: Config, reactor: Any, runner: Any = None, tls: Any = None
) -> ServerContext:
    """Open the store, directory, delivery agent and authenticator.

    ``runner`` defaults to a thread pool and ``tls`` to the configured
    :class:`TLSContexts`; unit tests pass an inline runner and a stand-in.
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

    store = MaildirStore(data / "mail", hub=hub, quota_lookup=quota_lookup)

    agent = MaildirDeliveryAgent(store, quota_lookup=quota_lookup)
    auth = DirectoryAuthenticator(directory, runner, reactor, config.auth)
    if tls is None:
        tls = TLSContexts(config.tls, config.server.hostname, data)
    limiter = ConnectionLimiter(
        config.limits.max_connections, config.limits.max_connections_per_ip
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
        super().startService()  # type: ignore[no-untyped-call]

    def _on_sighup(self, signum: int, frame: Any) -> None:
        self.context.reactor.callFromThread(self.context.tls.reload)

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


def make_service(config: Config, reactor: Any, demo: bool = False) -> MailService:
    """The whole server.  ``demo`` seeds the demonstration account."""
    context = build_context(config, reactor)
    if demo:
        from mailsuite.demo import seed_demo

        seed_demo(context, Path(__file__).resolve().parent.parent / "maildir-sample")
    top = MailService(context)
    # Before the listeners: context.queue exists before any SMTP factory, and
    # the queue service (started first) is stopped last.
    from mailsuite.delivery.queue import attach

    attach(context, top)
    for role in ROLES:
        desc = getattr(config.listeners, role)
        if not desc:
            continue
        endpoint = endpoints.serverFromString(reactor, desc)
        child = internet.StreamServerEndpointService(endpoint, make_factory(context, role))
        child._raiseSynchronously = True
        child.setName(role)
        child.setServiceParent(top)
    log.info(
        "mailsuite starting: data dir {data}, hostname {host}",
        data=str(config.data_dir),
        host=config.server.hostname,
    )
    return top
