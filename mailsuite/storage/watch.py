"""One watcher per folder for the whole process (IDLE, RFC 2177).

Sessions that wait for changes (IMAP IDLE) register a callback for the
folder they show with :meth:`FolderWatcher.watch`; the watcher tells every
callback of a folder when something in it may have changed.  The callback
is a hint: the caller decides what changed itself (``Mailbox.changed_on_disk``
and ``sync()``), so a spurious call costs a ``stat`` and nothing else.

How changes are seen (DESIGN.md §2: other processes' changes by cheap stats):

* **inotify** (Linux, ``twisted.internet.inotify``): ``new/`` and ``cur/``
  (files created, moved in or out, deleted) and the folder directory itself
  for ``dovecot-uidlist`` and ``mailsuite.modseq`` (written or replaced).
  Events are coalesced for ``debounce`` seconds, then the callbacks run: a
  delivery by another process on this host is reported at once.
* **polling**, always, as the safety net (inotify does not see another
  host's writes on NFS, drops events when its queue overflows, and is
  missing or out of watches on some systems): every ``interval`` seconds
  *one* runner job stats every watched folder (``new/``, ``cur/``, the
  uidlist, the modseq log) and the callbacks of each folder whose signature
  changed run.  The cost is per folder, not per session.  A signature read
  while one of its mtimes is less than :data:`MTIME_TRUST` seconds old
  may hide a second change in the same timestamp tick, so such a folder is
  reported once more at the next poll.  A folder's first poll reports it
  (no baseline existed when its first session registered).

Contracts: every method runs on the reactor thread; callbacks run on the
reactor thread and must not raise (failures are logged).  The stats run
through the injected runner; ``inotify_add_watch`` runs on the reactor
thread (a path lookup, like the per-command ``stat``).  ``watch`` returns an
idempotent unregister function; the last unregister of a folder drops its
inotify watches, its pending calls and, when no folder is left, the poll
timer — nothing stays behind (no leak with sessions coming and going).
When the inotify instance is lost (Twisted closes it when a watched
directory is deleted) the watcher makes a new one, re-adds the watches and
wakes every folder's callbacks once.  When no inotify instance can be made,
or the watch limit (``fs.inotify.max_user_watches``) is reached, folders
are polled only; this is logged once.

Known cost: a wake makes every idle session of the folder sync its own view,
so with hundreds of idle sessions on one folder in one process the last one
reports a delivery after all their syncs (bench/imap_idle.py, 10,000
connections on 20 accounts: 0.6-1.2 s; on 1,000 accounts: under 10 ms).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from mailsuite.interfaces import BlockingRunner
from mailsuite.storage.modseq import MODSEQ_FILE
from mailsuite.storage.uidlist import UIDLIST_FILE

log = Logger()

#: Same rule as the mailbox's snapshot (mailbox.MTIME_TRUST).
MTIME_TRUST = 1.0
DEBOUNCE = 0.05

# inotify(7) event bits (as in <sys/inotify.h>; twisted.internet.inotify
# has the same values but only imports on Linux).
IN_MODIFY = 0x002
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
#: new/ and cur/: a message arrived, was renamed (flags), moved or removed.
DIR_EVENTS = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
#: The folder directory: appends to or replacement of :data:`WATCHED_NAMES`.
ROOT_EVENTS = IN_MODIFY | IN_MOVED_TO | IN_CREATE

#: The folder directory's files whose writes are changes.
WATCHED_NAMES = frozenset({UIDLIST_FILE.encode(), MODSEQ_FILE.encode()})

#: What :func:`folder_signature` returns: mtimes of new/ and cur/, then
#: (inode, size, mtime) of the uidlist and modseq log (None: missing).
Signature = tuple[int, int, Any, Any] | None

Callback = Callable[[], None]


def _file_sig(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def folder_signature(path: str, now: float) -> tuple[Signature, bool]:
    """Blocking: (signature, trusted) of the folder at ``path``.

    ``trusted`` is False when a mtime is less than :data:`MTIME_TRUST`
    seconds before ``now`` (a later change may not move it).  A missing
    folder (or any error but a missing file) gives ``(None, True)``.
    """
    try:
        new_m = os.stat(os.path.join(path, "new")).st_mtime_ns
        cur_m = os.stat(os.path.join(path, "cur")).st_mtime_ns
        uidlist = _file_sig(os.path.join(path, UIDLIST_FILE))
        modseq = _file_sig(os.path.join(path, MODSEQ_FILE))
    except OSError:
        return None, True
    limit = int((now - MTIME_TRUST) * 1e9)
    mtimes = [new_m, cur_m, *(s[2] for s in (uidlist, modseq) if s is not None)]
    return (new_m, cur_m, uidlist, modseq), max(mtimes) < limit


def poll_folders(paths: Iterable[str], now: float) -> dict[str, tuple[Signature, bool]]:
    """Blocking (runner): :func:`folder_signature` of every path."""
    return {p: folder_signature(p, now) for p in paths}


class _Folder:
    """One watched folder: its callbacks and what the watcher knows of it."""

    __slots__ = ("callbacks", "known", "pending", "sig", "trusted", "watched")

    def __init__(self) -> None:
        self.callbacks: dict[int, Callback] = {}
        self.sig: Signature = None
        self.known = False  # a poll gave a baseline
        self.trusted = True
        self.watched: list[Any] = []  # FilePaths with an inotify watch
        self.pending: Any = None  # debounce DelayedCall


class FolderWatcher:
    """Tells sessions when a watched folder may have changed (see module doc).

    ``reactor`` provides IReactorTime (and IReactorFDSet for inotify);
    ``runner`` is the BlockingRunner for the periodic stats; ``interval`` is
    the poll period in seconds (``imap.idle_poll_interval``).
    ``use_inotify=False`` polls only (tests with ``task.Clock``).
    """

    def __init__(
        self,
        reactor: Any,
        runner: BlockingRunner,
        interval: float,
        use_inotify: bool = True,
        debounce: float = DEBOUNCE,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self._reactor = reactor
        self._runner = runner
        self.interval = interval
        self.debounce = debounce
        self._wallclock = wallclock
        self._folders: dict[str, _Folder] = {}
        self._tokens = itertools.count()
        self._tick_call: Any = None
        self._polling = False
        self._notifier: Any = None
        self._inotify_ok = use_inotify
        self._limit_logged = False
        self.polls = 0  # poll jobs run (for tests and benchmarks)

    # ------------------------------------------------------------ registration
    def watch(self, path: Path | str, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` when the folder at ``path`` may have changed.

        Returns the unregister function (idempotent).
        """
        key = os.path.normpath(os.fspath(path))
        folder = self._folders.get(key)
        if folder is None:
            folder = self._folders[key] = _Folder()
            self._add_inotify(key, folder)
            self._schedule_tick()
        token = next(self._tokens)
        folder.callbacks[token] = callback

        def unregister() -> None:
            f = self._folders.get(key)
            if f is None or f.callbacks.pop(token, None) is None or f.callbacks:
                return
            self._drop(key, f)

        return unregister

    def _drop(self, key: str, folder: _Folder) -> None:
        del self._folders[key]
        if folder.pending is not None and folder.pending.active():
            folder.pending.cancel()
        folder.pending = None
        self._remove_inotify(folder)
        if not self._folders and self._tick_call is not None:
            if self._tick_call.active():
                self._tick_call.cancel()
            self._tick_call = None

    def close(self) -> None:
        """Forget every folder, stop the timer and close the inotify instance."""
        for key, folder in list(self._folders.items()):
            folder.callbacks.clear()
            self._drop(key, folder)
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.on_lost = None
            notifier.loseConnection()

    def stats(self) -> dict[str, int]:
        """Counts for tests and benchmarks."""
        return {
            "folders": len(self._folders),
            "callbacks": sum(len(f.callbacks) for f in self._folders.values()),
            "inotify_folders": sum(1 for f in self._folders.values() if f.watched),
            "inotify_watches": len(self._notifier._watchpaths) if self._notifier else 0,
            "timers": int(self._tick_call is not None)
            + sum(1 for f in self._folders.values() if f.pending is not None),
        }

    # ------------------------------------------------------------ waking
    def _wake(self, key: str) -> None:
        folder = self._folders.get(key)
        if folder is None:
            return
        for callback in list(folder.callbacks.values()):
            try:
                callback()
            except Exception:
                log.failure("folder watcher callback failed for {path}", path=key)

    def _soon(self, key: str) -> None:
        """Wake ``key``'s callbacks after the debounce delay (coalesced)."""
        folder = self._folders.get(key)
        if folder is not None and folder.pending is None:
            folder.pending = self._reactor.callLater(self.debounce, self._fire, key)

    def _fire(self, key: str) -> None:
        folder = self._folders.get(key)
        if folder is not None:
            folder.pending = None
            self._wake(key)

    # ------------------------------------------------------------ polling
    def _schedule_tick(self) -> None:
        if self._tick_call is None and not self._polling and self._folders:
            self._tick_call = self._reactor.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        self._tick_call = None
        if not self._folders:
            return
        self._polling = True
        self.polls += 1
        d = self._runner.run(poll_folders, list(self._folders), self._wallclock())
        d.addCallback(self._polled)
        d.addErrback(lambda f: log.failure("folder watcher poll failed", f))

        def again(_: Any) -> None:
            self._polling = False
            self._schedule_tick()

        d.addBoth(again)

    def _polled(self, results: dict[str, tuple[Signature, bool]]) -> None:
        changed = []
        for key, (sig, trusted) in results.items():
            folder = self._folders.get(key)
            if folder is None:
                continue
            if not folder.known or sig != folder.sig or not folder.trusted:
                changed.append(key)
            folder.known, folder.sig, folder.trusted = True, sig, trusted
        for key in changed:
            self._wake(key)

    # ------------------------------------------------------------ inotify
    def _get_notifier(self) -> Any:
        if self._notifier is None and self._inotify_ok:
            try:
                self._notifier = _make_notifier(self._reactor, self._notifier_lost)
            except Exception as e:
                self._inotify_ok = False
                log.info("inotify unavailable ({err}); IDLE polls folders", err=repr(e))
        return self._notifier

    def _add_inotify(self, key: str, folder: _Folder) -> None:
        notifier = self._get_notifier()
        if notifier is None:
            return
        from twisted.python.filepath import FilePath

        root = FilePath(key.encode("utf-8", "surrogateescape"))
        plan = [
            (root.child(b"new"), DIR_EVENTS, None),
            (root.child(b"cur"), DIR_EVENTS, None),
            (root, ROOT_EVENTS, WATCHED_NAMES),
        ]
        try:
            for fp, mask, names in plan:
                callback = partial(self._event, key, names)
                notifier.watch(fp, mask=mask, callbacks=[callback])
                folder.watched.append(fp)
        except Exception as e:
            self._remove_inotify(folder)
            if not self._limit_logged:
                self._limit_logged = True
                log.warn(
                    "inotify watch failed ({err}); polling this and such folders",
                    err=repr(e),
                )

    def _remove_inotify(self, folder: _Folder) -> None:
        watched, folder.watched = folder.watched, []
        notifier = self._notifier
        if notifier is None:
            return
        for fp in watched:
            try:
                notifier.ignore(fp)
            except KeyError:
                pass

    def _event(
        self, key: str, names: frozenset[bytes] | None, _w: Any, fp: Any, mask: int
    ) -> None:
        if names is not None and fp.basename() not in names:
            return
        self._soon(key)

    def _notifier_lost(self) -> None:
        """The inotify fd was closed under us: make a new one and catch up."""
        self._notifier = None
        self._reactor.callLater(0, self._rewatch)

    def _rewatch(self) -> None:
        for key, folder in list(self._folders.items()):
            folder.watched = []
            self._add_inotify(key, folder)
        for key in list(self._folders):
            self._wake(key)


def _make_notifier(reactor: Any, on_lost: Callback) -> Any:
    """A Twisted INotify that reports its own loss (Linux only)."""
    from twisted.internet import inotify

    class Notifier(inotify.INotify):  # type: ignore[misc]
        on_lost: Callback | None = None

        def connectionLost(self, reason: Any) -> None:
            super().connectionLost(reason)  # type: ignore[no-untyped-call]
            lost, self.on_lost = self.on_lost, None
            if lost is not None:
                lost()

    notifier: Any = Notifier(reactor=reactor)  # type: ignore[no-untyped-call]
    notifier.on_lost = on_lost
    try:
        notifier.startReading()
    except Exception:
        notifier.on_lost = None
        notifier.loseConnection()
        raise
    return notifier
