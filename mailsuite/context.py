"""The shared parts every protocol factory is built with.

One :class:`ServerContext` per server process.  It is built by
:func:`mailsuite.service.build_context` and handed to every listener's
factory; nothing in it is a module-level singleton (DESIGN.md §4.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailsuite.config import Config
from mailsuite.interfaces import (
    Authenticator,
    BlockingRunner,
    ChangeHub,
    DeliveryAgent,
    Directory,
    Store,
)
from mailsuite.protocol.lines import ConnectionLimiter


@dataclass
class ServerContext:
    """What protocols share.

    ``reactor`` provides IReactorTime (``callLater``, ``seconds``) and
    IReactorThreads; ``runner`` is the thread-pool seam for every blocking
    call; ``tls`` is a :class:`mailsuite.tls.TLSContexts` (or None when a test
    runs without TLS); ``queue`` is the outbound queue once it exists;
    ``watcher`` is the process's :class:`mailsuite.storage.watch.FolderWatcher`
    (IDLE registers with it; None: each IDLE session polls by itself);
    ``worker`` is this process's index when several share the listeners
    (0: the primary, or the only process).
    """

    reactor: Any
    config: Config
    runner: BlockingRunner
    store: Store
    directory: Directory
    agent: DeliveryAgent
    auth: Authenticator
    hub: ChangeHub
    tls: Any
    limiter: ConnectionLimiter
    queue: Any = None
    watcher: Any = None
    worker: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
