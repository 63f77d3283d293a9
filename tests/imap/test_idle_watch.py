"""IDLE (RFC 2177) with the process's folder watcher (storage/watch.py):
sessions register with one watcher per folder instead of polling each; the
registration ends with DONE or the connection.  Polling path on task.Clock
(the end-to-end test with inotify is test_idle_watch_e2e.py)."""

from __future__ import annotations

import io
import time
from pathlib import Path

from twisted.python.failure import Failure

from mailsuite.context import ServerContext
from mailsuite.storage.store import MaildirStore
from mailsuite.storage.watch import FolderWatcher
from tests.imap.support import (
    USER,
    Client,
    add_user,
    claim_recent,
    deliver,
    make_context,
    message,
)

INTERVAL = 5.0


def watched_context(tmp_path: Path, n: int = 3) -> tuple[ServerContext, FolderWatcher]:
    ctx = make_context(tmp_path, imap={"idle_poll_interval": INTERVAL})
    watcher = FolderWatcher(
        ctx.reactor, ctx.runner, INTERVAL, use_inotify=False, wallclock=lambda: time.time() + 3600
    )
    ctx.watcher = watcher
    add_user(ctx)
    for i in range(1, n + 1):
        deliver(ctx, message(i))
    claim_recent(ctx)
    return ctx, watcher


def idling(ctx: ServerContext) -> Client:
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    assert c.cmd("IDLE") == b"+ idling\r\n"
    return c


def advance(ctx: ServerContext, seconds: float) -> None:
    ctx.reactor.advance(seconds)  # type: ignore[attr-defined]


def other_process_append(tmp_path: Path, n: int) -> None:
    box = MaildirStore(tmp_path / "mail").account(USER).open("INBOX")  # no shared hub
    box.append(io.BytesIO(message(n)))


def test_idle_reports_other_process_change_through_the_watcher(tmp_path: Path) -> None:
    ctx, watcher = watched_context(tmp_path)
    c = idling(ctx)
    assert watcher.stats()["callbacks"] == 1
    advance(ctx, INTERVAL)  # the folder's first poll
    assert c.read() == b""
    other_process_append(tmp_path, 4)
    assert c.read() == b""
    advance(ctx, INTERVAL)
    assert c.read() == b"* 4 EXISTS\r\n* 1 RECENT\r\n"
    assert c.raw(b"DONE\r\n") == b"t3 OK IDLE terminated\r\n"
    assert watcher.stats()["folders"] == 0


def test_change_just_before_idle_is_reported_at_once(tmp_path: Path) -> None:
    ctx, _ = watched_context(tmp_path)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    other_process_append(tmp_path, 4)
    assert c.cmd("IDLE") == b"+ idling\r\n* 4 EXISTS\r\n* 1 RECENT\r\n"
    assert c.raw(b"DONE\r\n") == b"t3 OK IDLE terminated\r\n"


def test_hub_changes_still_arrive_at_once(tmp_path: Path) -> None:
    ctx, _ = watched_context(tmp_path)
    c = idling(ctx)
    deliver(ctx, message(4))
    assert c.read() == b"* 4 EXISTS\r\n* 1 RECENT\r\n"


def test_many_sessions_one_folder_one_poll_and_no_leak(tmp_path: Path) -> None:
    ctx, watcher = watched_context(tmp_path)
    clients = [idling(ctx) for _ in range(40)]
    assert watcher.stats()["folders"] == 1 and watcher.stats()["callbacks"] == 40
    # per session only its inactivity and keepalive timers; one poll timer for all
    assert len(ctx.reactor.getDelayedCalls()) == 2 * 40 + 1  # type: ignore[attr-defined]
    advance(ctx, INTERVAL)
    other_process_append(tmp_path, 4)
    advance(ctx, INTERVAL)
    out = [c.read() for c in clients]
    assert all(o.startswith(b"* 4 EXISTS\r\n") for o in out)
    assert sum(b"* 1 RECENT" in o for o in out) == 1  # \Recent: one session only
    for i, c in enumerate(clients):
        if i % 2:
            assert c.raw(b"DONE\r\n").endswith(b"OK IDLE terminated\r\n")
            c.ok("LOGOUT")
        else:
            c.proto.connectionLost(Failure(ConnectionError("gone")))
    assert watcher.stats() == {
        "folders": 0,
        "callbacks": 0,
        "inotify_folders": 0,
        "inotify_watches": 0,
        "timers": 0,
    }
    assert ctx.reactor.getDelayedCalls() == []  # type: ignore[attr-defined]


def test_idle_again_after_done_registers_again(tmp_path: Path) -> None:
    ctx, watcher = watched_context(tmp_path)
    c = idling(ctx)
    assert c.raw(b"DONE\r\n").endswith(b"OK IDLE terminated\r\n")
    assert watcher.stats()["callbacks"] == 0
    assert c.cmd("IDLE") == b"+ idling\r\n"
    assert watcher.stats()["callbacks"] == 1
    c.proto.connectionLost(Failure(ConnectionError("gone")))
    assert watcher.stats()["callbacks"] == 0
