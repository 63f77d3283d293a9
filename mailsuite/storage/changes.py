"""The change hub: tells open sessions in this process what changed.

DESIGN.md §2: in-process changes (a delivery, another session's STORE or
EXPUNGE) reach subscribed sessions at once; changes by *other* processes are
found by the sessions themselves through ``Mailbox.changed_on_disk()``.

Thread safety: ``publish`` may be called from a pool thread; callbacks always
run on the reactor thread (``callFromThread``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger

from mailsuite.interfaces import MailboxChange

log = Logger()


class ChangeHub:
    """Implements :class:`mailsuite.interfaces.ChangeHub`."""

    def __init__(self, reactor: IReactorFromThreads) -> None:
        self._reactor = reactor
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Callable[[MailboxChange], None]]] = {}

    def subscribe(
        self, account: str, callback: Callable[[MailboxChange], None]
    ) -> Callable[[], None]:
        with self._lock:
            self._subscribers.setdefault(account, []).append(callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subscribers.get(account, [])
                if callback in subs:
                    subs.remove(callback)
                if not subs:
                    self._subscribers.pop(account, None)

        return unsubscribe

    def publish(self, change: MailboxChange) -> None:
        """Queue ``change`` for the account's subscribers; with none there is
        nothing to wake the reactor for (a session subscribing later syncs
        when it selects a mailbox)."""
        with self._lock:
            if change.account not in self._subscribers:
                return
        self._reactor.callFromThread(self._dispatch, change)

    def _dispatch(self, change: MailboxChange) -> None:
        with self._lock:
            subs = list(self._subscribers.get(change.account, ()))
        for callback in subs:
            try:
                callback(change)
            except Exception:
                log.failure("change subscriber failed for {account}", account=change.account)
