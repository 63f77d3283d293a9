"""FolderWatcher, polling path: task.Clock, an inline runner, a real Maildir.

"Another process" is a second MaildirStore without a hub, or plain file
operations (os.rename into new/, like an outside MDA)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.modseq import MODSEQ_FILE
from mailsuite.storage.store import MaildirStore
from mailsuite.storage.watch import FolderWatcher, folder_signature
from mailsuite.threads import InlineRunner
from tests.storage.conftest import msg

INTERVAL = 5.0


class CountingRunner(InlineRunner):
    def __init__(self) -> None:
        self.calls = 0

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        self.calls += 1
        return super().run(fn, *args, **kw)


class HeldRunner:
    """Runs nothing until ``release()``: a poll job still in the pool."""

    def __init__(self) -> None:
        self.jobs: list[tuple[defer.Deferred[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.jobs.append((d, fn, args))
        return d

    def release(self) -> None:
        jobs, self.jobs = self.jobs, []
        for d, fn, args in jobs:
            d.callback(fn(*args))


class Later:
    """A wall clock far ahead of every mtime: signatures are trusted."""

    def __init__(self) -> None:
        self.now = time.time() + 3600

    def __call__(self) -> float:
        return self.now


def make(
    runner: Any = None, wallclock: Callable[[], float] | None = None
) -> tuple[FolderWatcher, Clock]:
    clock = Clock()
    w = FolderWatcher(
        clock,
        runner or InlineRunner(),
        INTERVAL,
        use_inotify=False,
        wallclock=wallclock or Later(),
    )
    return w, clock


def counter() -> tuple[list[int], Callable[[], None]]:
    hits = [0]

    def cb() -> None:
        hits[0] += 1

    return hits, cb


def other_process_delivery(folder: Path, n: int) -> None:
    """What an outside MDA does: write tmp/, rename into new/."""
    tmp = folder / "tmp" / f"{1700000000 + n}.M{n}P99.other"
    tmp.write_bytes(b"Subject: outside %d\r\n\r\nhi\r\n" % n)
    os.rename(tmp, folder / "new" / tmp.name)


def test_first_poll_reports_then_quiet_until_a_change(account: MaildirAccount) -> None:
    w, clock = make()
    hits, cb = counter()
    w.watch(account.root, cb)
    clock.advance(INTERVAL)
    assert hits == [1]  # baseline poll: the folder may have changed before it
    clock.advance(INTERVAL)
    clock.advance(INTERVAL)
    assert hits == [1]
    other_process_delivery(account.root, 1)
    clock.advance(INTERVAL)
    assert hits == [2]
    clock.advance(INTERVAL)
    assert hits == [2]


def test_flag_rename_expunge_and_modseq_log_are_changes(
    tmp_path: Path, account: MaildirAccount
) -> None:
    box = account.open("INBOX")
    uid = box.append(msg(1))
    box.sync()
    w, clock = make()
    hits, cb = counter()
    w.watch(account.root, cb)
    clock.advance(INTERVAL)
    base = hits[0]
    other = MaildirStore(tmp_path / "mail").account(account.address).open("INBOX")
    other.store_flags([uid], {"\\Seen"}, "add")
    clock.advance(INTERVAL)
    assert hits[0] == base + 1
    with open(account.root / MODSEQ_FILE, "ab") as f:
        f.write(b"")  # same size: no change
    clock.advance(INTERVAL)
    assert hits[0] == base + 1
    other.store_flags([uid], {"\\Deleted"}, "add")
    assert other.expunge([uid]) == [uid]
    clock.advance(INTERVAL)
    assert hits[0] == base + 2


def test_untrusted_signature_is_reported_once_more(account: MaildirAccount) -> None:
    now = [time.time() + 3600]
    w, clock = make(wallclock=lambda: now[0])
    hits, cb = counter()
    w.watch(account.root, cb)
    clock.advance(INTERVAL)
    now[0] = time.time()  # the next change is younger than MTIME_TRUST
    other_process_delivery(account.root, 1)
    clock.advance(INTERVAL)
    assert hits == [2]
    now[0] = time.time() + 3600
    clock.advance(INTERVAL)
    assert hits == [3]  # a change in the same mtime tick would be caught here
    clock.advance(INTERVAL)
    assert hits == [3]


def test_one_poll_job_per_interval_for_all_folders_and_sessions(store: MaildirStore) -> None:
    runner = CountingRunner()
    w, clock = make(runner)
    roots = []
    for i in range(3):
        acct = store.account(f"u{i}@example.org")
        acct.ensure_created()
        roots.append(acct.root)
    hits = [0]

    def cb() -> None:
        hits[0] += 1

    for n in range(300):
        w.watch(roots[n % 3], cb)
    assert w.stats()["folders"] == 3 and w.stats()["callbacks"] == 300
    clock.advance(INTERVAL)
    clock.advance(INTERVAL)
    assert runner.calls == 2
    assert hits == [300]
    other_process_delivery(roots[1], 1)
    clock.advance(INTERVAL)
    assert runner.calls == 3
    assert hits == [400]  # only the changed folder's 100 sessions


def test_many_sessions_registering_and_leaving_leave_nothing(store: MaildirStore) -> None:
    w, clock = make()
    roots = []
    for i in range(5):
        acct = store.account(f"u{i}@example.org")
        acct.ensure_created()
        roots.append(acct.root)
    rnd = random.Random(7)
    live: list[Callable[[], None]] = []
    for step in range(3000):
        if live and rnd.random() < 0.45:
            live.pop(rnd.randrange(len(live)))()
        else:
            live.append(w.watch(roots[rnd.randrange(5)], lambda: None))
        if step % 500 == 0:
            other_process_delivery(roots[step % 5], step)
            clock.advance(INTERVAL)
    for unregister in live:
        unregister()
        unregister()  # idempotent
    assert w.stats() == {
        "folders": 0,
        "callbacks": 0,
        "inotify_folders": 0,
        "inotify_watches": 0,
        "timers": 0,
    }
    assert clock.getDelayedCalls() == []
    assert w._folders == {}


def test_unregister_while_a_poll_runs(account: MaildirAccount) -> None:
    runner = HeldRunner()
    w, clock = make(runner)
    hits, cb = counter()
    unregister = w.watch(account.root, cb)
    clock.advance(INTERVAL)
    assert len(runner.jobs) == 1
    clock.advance(INTERVAL * 3)
    assert len(runner.jobs) == 1  # no second job while one is in the pool
    unregister()
    runner.release()
    assert hits == [0]
    assert clock.getDelayedCalls() == []
    again = w.watch(account.root, cb)  # a new folder entry after the old left
    clock.advance(INTERVAL)
    runner.release()
    assert hits == [1]
    again()
    assert clock.getDelayedCalls() == []


def test_deleted_folder_reported_once_and_callback_errors_isolated(
    account: MaildirAccount,
) -> None:
    account.create_folder("Old")
    path = account.root / ".Old"
    w, clock = make()
    hits, cb = counter()

    def broken() -> None:
        raise RuntimeError("boom")

    w.watch(path, broken)
    w.watch(path, cb)
    clock.advance(INTERVAL)
    assert hits == [1]
    account.delete_folder("Old")
    clock.advance(INTERVAL)
    assert hits == [2]
    clock.advance(INTERVAL)
    assert hits == [2]
    w.close()
    assert clock.getDelayedCalls() == []


def test_signature_of_missing_folder(tmp_path: Path) -> None:
    assert folder_signature(str(tmp_path / "nope"), time.time()) == (None, True)


def test_inotify_unavailable_falls_back_to_polling(account: MaildirAccount) -> None:
    clock = Clock()  # no IReactorFDSet: INotify cannot be made
    w = FolderWatcher(clock, InlineRunner(), INTERVAL, wallclock=Later())
    hits, cb = counter()
    unregister = w.watch(account.root, cb)
    assert w.stats()["inotify_folders"] == 0
    clock.advance(INTERVAL)
    other_process_delivery(account.root, 1)
    clock.advance(INTERVAL)
    assert hits == [2]
    unregister()
    assert clock.getDelayedCalls() == []
