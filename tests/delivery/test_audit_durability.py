"""Acceptance audit: "never lose mail" means fsync before acknowledging.

The crash tests kill processes, which the page cache survives; these tests
check the order of the durable steps themselves on a real Maildir and a real
queue directory, by watching the ``os`` calls (the real calls still run):

* delivery agent (issue 3 item 3): the message file is fsynced before it is
  renamed into ``new/``, and ``new/`` is fsynced after the rename, all before
  ``commit()`` returns (SMTP answers 250 only after ``commit()``);
* outbound queue (issue 6 item 1): the message is fsynced before it is
  renamed into the queue and the directory fsynced before ``commit()``
  returns;
* the uidlist (UIDs are state, not cache) is replaced atomically and durably.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.delivery.queue_store import QueueStore
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage.store import MaildirStore

MESSAGE = b"From: a@example.org\r\nSubject: durable\r\n\r\n" + b"x" * 3000 + b"\r\n"


class Calls:
    """Records fsync (by path), rename/replace/link (by destination) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def index(self, kind: str, pred: Any) -> int:
        for i, (k, path) in enumerate(self.events):
            if k == kind and pred(path):
                return i
        raise AssertionError(f"no {kind} matching in {self.events}")

    def fsyncs_of(self, path: str) -> list[int]:
        return [i for i, (k, p) in enumerate(self.events) if k == "fsync" and p == path]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    rec = Calls()
    real_fsync, real_rename, real_replace, real_link = os.fsync, os.rename, os.replace, os.link
    real_fdatasync = os.fdatasync

    def fsync(fd: int) -> None:
        rec.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        rec.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fdatasync(fd)

    def rename(src: Any, dst: Any, **kw: Any) -> None:
        real_rename(src, dst, **kw)
        rec.events.append(("rename", os.path.realpath(dst)))

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        real_replace(src, dst, **kw)
        rec.events.append(("rename", os.path.realpath(dst)))

    def link(src: Any, dst: Any, **kw: Any) -> None:
        real_link(src, dst, **kw)
        rec.events.append(("link", os.path.realpath(dst)))

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", link)
    yield rec


def test_delivery_fsyncs_file_then_renames_then_fsyncs_new(tmp_path: Path, calls: Calls) -> None:
    store = MaildirStore(tmp_path / "mail")
    store.account("bob@example.org").ensure_created()
    agent = MaildirDeliveryAgent(store)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    d.write(MESSAGE)
    calls.events.clear()
    results = d.commit({"bob@example.org": [LocalTarget("bob@example.org")]})
    assert all(r.error is None for r in results)
    new_dir = os.path.realpath(tmp_path / "mail" / "example.org" / "bob" / "new")
    (final,) = [os.path.join(new_dir, n) for n in os.listdir(new_dir)]
    into_new = calls.index("rename", lambda p: p == final)
    assert os.path.getsize(final) == len(MESSAGE)
    # the bytes were fsynced before the rename made them visible (one target:
    # the file was written in tmp/ of the folder itself)
    data_syncs = [
        i for i, (k, p) in enumerate(calls.events) if k == "fsync" and not os.path.isdir(p)
    ]
    assert data_syncs and data_syncs[0] < into_new, calls.events
    # and new/ was fsynced after the rename, before commit() returned
    assert any(i > into_new for i in calls.fsyncs_of(new_dir)), calls.events


def test_hard_linked_copies_fsync_the_spool_before_any_rename(
    tmp_path: Path, calls: Calls
) -> None:
    store = MaildirStore(tmp_path / "mail")
    agent = MaildirDeliveryAgent(store)
    targets = {
        "team@example.org": [LocalTarget("bob@example.org"), LocalTarget("ann@example.org")]
    }
    d = agent.begin(Envelope("a@example.org", list(targets)))
    d.write(MESSAGE)
    calls.events.clear()
    results = d.commit(targets)
    assert all(r.error is None for r in results)
    for who in ("bob", "ann"):
        new_dir = os.path.realpath(tmp_path / "mail" / "example.org" / who / "new")
        (final,) = [os.path.join(new_dir, n) for n in os.listdir(new_dir)]
        into_new = calls.index("rename", lambda p, final=final: p == final)
        data_syncs = [
            i for i, (k, p) in enumerate(calls.events) if k == "fsync" and not os.path.isdir(p)
        ]
        assert data_syncs and data_syncs[0] < into_new, calls.events
        assert any(i > into_new for i in calls.fsyncs_of(new_dir)), calls.events


def test_queue_commit_is_durable_before_it_returns(tmp_path: Path, calls: Calls) -> None:
    store = QueueStore(tmp_path / "q")
    msg = store.begin(Envelope("a@example.org", ["x@remote.test"]), now=1.0)
    msg.write(MESSAGE)
    calls.events.clear()
    qid = msg.commit(["x@remote.test"])
    final = os.path.realpath(store.message_path(qid))
    into_queue = calls.index("rename", lambda p: p == final)
    data_syncs = [
        i for i, (k, p) in enumerate(calls.events) if k == "fsync" and not os.path.isdir(p)
    ]
    assert data_syncs and data_syncs[0] < into_queue, calls.events
    assert any(i > into_queue for i in calls.fsyncs_of(os.path.dirname(final))), calls.events
    # the state file that makes it an entry is durable too
    states = [i for i, (k, p) in enumerate(calls.events) if k == "rename" and p != final]
    assert states, calls.events
    last = states[-1]
    state_dir = os.path.dirname(calls.events[last][1])
    assert any(i > last for i in calls.fsyncs_of(state_dir)), calls.events


def test_uidlist_changes_are_durable(tmp_path: Path, calls: Calls) -> None:
    """UID assignment is state: an append is fdatasync'ed, a rewrite is
    fdatasync'ed, renamed into place and its directory fsynced."""
    store = MaildirStore(tmp_path / "mail")
    account = store.account("bob@example.org")
    account.ensure_created()
    box = account.open("INBOX")
    uidlist = os.path.realpath(tmp_path / "mail" / "example.org" / "bob" / "dovecot-uidlist")
    for _ in range(2):
        calls.events.clear()
        box.append(io.BytesIO(MESSAGE))
        box.sync()
        renamed = [i for i, (k, p) in enumerate(calls.events) if k == "rename" and p == uidlist]
        if renamed:  # rewritten: temp file synced, renamed, directory synced
            assert any(k == "fsync" for k, _ in calls.events[: renamed[-1]]), calls.events
            assert any(i > renamed[-1] for i in calls.fsyncs_of(os.path.dirname(uidlist)))
        else:  # appended in place
            assert calls.fsyncs_of(uidlist), calls.events
