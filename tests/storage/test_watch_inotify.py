"""FolderWatcher with inotify on the real reactor (Linux).

The poll interval is an hour, so a callback that runs at all was woken by
inotify; trial's timeout (not a timed assertion) bounds the wait."""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest

from mailsuite.storage.store import MaildirStore
from mailsuite.storage.watch import FolderWatcher
from mailsuite.threads import InlineRunner

HOUR = 3600.0


def _inotify_works() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        from twisted.internet import inotify

        n = inotify.INotify()
        n.loseConnection()
        return True
    except Exception:
        return False


class InotifyWatcherTests(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        if not _inotify_works():
            raise unittest.SkipTest("inotify is not available")
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.store = MaildirStore(self.tmp / "mail")
        self.watcher = FolderWatcher(reactor, InlineRunner(), HOUR)
        self.addCleanup(self.watcher.close)

    def folder(self, address: str) -> Path:
        account = self.store.account(address)
        account.ensure_created()
        return Path(account.root)

    def wait_for(self, path: Path) -> tuple[defer.Deferred[None], Any]:
        d: defer.Deferred[None] = defer.Deferred()

        def woke() -> None:
            if not d.called:
                d.callback(None)

        return d, self.watcher.watch(path, woke)

    @defer.inlineCallbacks
    def test_rename_into_new_by_another_process_wakes_at_once(self) -> Any:
        root = self.folder("a@example.org")
        d, unregister = self.wait_for(root)
        self.assertEqual(self.watcher.stats()["inotify_folders"], 1)
        tmp = root / "tmp" / "1700000000.M1P2.outside"
        tmp.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
        os.rename(tmp, root / "new" / tmp.name)  # what an outside MDA does
        yield d
        unregister()
        self.assertEqual(self.watcher.stats()["inotify_watches"], 0)

    @defer.inlineCallbacks
    def test_flag_change_and_modseq_log_wake(self) -> Any:
        root = self.folder("b@example.org")
        box = self.store.account("b@example.org").open("INBOX")
        uid = box.append(io.BytesIO(b"Subject: x\r\n\r\ny\r\n"))
        box.sync()
        d, unregister = self.wait_for(root)
        other = MaildirStore(self.tmp / "mail").account("b@example.org").open("INBOX")
        other.store_flags([uid], {"\\Flagged"}, "add")
        yield d
        unregister()

    @defer.inlineCallbacks
    def test_deleting_a_watched_folder_keeps_the_others_watched(self) -> Any:
        # Twisted's INotify closes itself when a watched directory is deleted;
        # the watcher must make a new one and keep watching the other folders.
        gone = self.folder("gone@example.org")
        kept = self.folder("kept@example.org")
        waiting: list[defer.Deferred[None]] = []

        def kept_woke() -> None:
            while waiting:
                waiting.pop().callback(None)

        unregister_kept = self.watcher.watch(kept, kept_woke)
        d_gone, unregister_gone = self.wait_for(gone)
        shutil.rmtree(gone)
        yield d_gone
        yield deferLater(0.3)  # the new instance is made, everyone woken once
        self.assertEqual(self.watcher.stats()["inotify_folders"], 1)
        self.assertEqual(self.watcher.stats()["inotify_watches"], 3)
        d_kept: defer.Deferred[None] = defer.Deferred()
        waiting.append(d_kept)
        tmp = kept / "tmp" / "1700000001.M2P2.outside"
        tmp.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
        os.rename(tmp, kept / "new" / tmp.name)
        yield d_kept
        unregister_gone()
        unregister_kept()
        self.assertEqual(self.watcher.stats()["folders"], 0)
        self.assertEqual(self.watcher.stats()["inotify_watches"], 0)


def deferLater(seconds: float) -> defer.Deferred[None]:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)
