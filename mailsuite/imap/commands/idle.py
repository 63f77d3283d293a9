"""IDLE (RFC 2177).

After ``+ idling`` the session reports changes to the selected mailbox as
they happen: at once when the change hub tells about a delivery or another
session's change in this process; for changes made by other processes when
the process's folder watcher (``context.watcher``,
:mod:`mailsuite.storage.watch`: inotify at once, else one poll per folder
every ``imap.idle_poll_interval`` seconds) says the folder may have changed
-- the session then checks ``Mailbox.changed_on_disk`` itself.  Without a
watcher each session polls every ``imap.idle_poll_interval`` seconds.
EXPUNGE may be sent during IDLE.  Only a ``DONE`` line ends IDLE; any other
line is answered ``* BAD`` and IDLE goes on.  ``* OK Still here`` every two
minutes keeps NAT state alive; the inactivity timeout does not end IDLE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mailsuite.imap.command import CONTINUE, Request, ok

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

KEEPALIVE_INTERVAL = 120.0


class Idle:
    """One running IDLE command; ``stop()`` cancels its timers."""

    def __init__(self, s: IMAPSession, req: Request) -> None:
        self.s = s
        self.req = req
        self.clock = s.factory.clock
        self.poll_call: Any = None
        self.keepalive_call: Any = None
        self.unwatch: Any = None  # unregisters from context.watcher
        self.running: defer.Deferred[None] | None = None
        self.again = False
        self.stopped = False

    def start(self) -> None:
        self.keepalive_call = self.clock.callLater(KEEPALIVE_INTERVAL, self._keepalive)
        if self._watch():
            self.poke()  # a change between the last command and the watch
        else:
            self._schedule_poll()
            self.s.flush_updates(True)

    def stop(self) -> None:
        self.stopped = True
        for call in (self.poll_call, self.keepalive_call):
            if call is not None and call.active():
                call.cancel()
        if self.unwatch is not None:
            self.unwatch()
            self.unwatch = None

    def _watch(self) -> bool:
        """Register with the process's folder watcher (False: none usable)."""
        watcher = getattr(self.s.context, "watcher", None)
        view = self.s.view
        path = getattr(view.mailbox, "path", None) if view is not None else None
        if watcher is None or path is None:
            return False
        self.unwatch = watcher.watch(path, self._woken)
        return True

    def _woken(self) -> None:
        if not self.stopped:
            self.poke()

    def _schedule_poll(self) -> None:
        if self.s.view is not None and not self.stopped:
            self.poll_call = self.clock.callLater(self.s.config.idle_poll_interval, self._poll)

    def _poll(self) -> None:
        self.poll_call = None
        self.poke().addBoth(lambda _: self._schedule_poll())

    def _keepalive(self) -> None:
        if not self.stopped:
            self.s.untagged("OK Still here")
            self.keepalive_call = self.clock.callLater(KEEPALIVE_INTERVAL, self._keepalive)

    def poke(self) -> defer.Deferred[None]:
        """Sync and push updates now (one sync at a time; coalesced)."""
        if self.running is not None:
            self.again = True
            return self.running
        d = self.s.refresh()
        self.running = d

        def sent(_: Any) -> None:
            self.running = None
            if self.stopped:
                return
            self.s.flush_updates(True)
            if self.again:
                self.again = False
                self.poke()

        d.addBoth(sent)
        return d

    def line(self, line: bytes | None) -> Any:
        """A client line during IDLE (None: too long): only DONE ends it."""
        if line is None or line.strip().upper() != b"DONE":
            self.s.untagged("BAD Expected DONE")
            return None
        self.stop()
        self.s.idle = None
        self.s.line_hook = None
        running = self.running or defer.succeed(None)
        return running.addCallback(lambda _: self.s.complete(ok("IDLE terminated"), self.req))


def idle(s: IMAPSession, req: Request) -> Any:
    """``IDLE``; ends with ``DONE``."""
    if req.args:
        from mailsuite.imap.parser import ParseError

        raise ParseError("IDLE takes no arguments")
    s.send_line("+ idling")
    handler = Idle(s, req)
    s.idle = handler
    s.line_hook = handler.line
    handler.start()
    return CONTINUE
