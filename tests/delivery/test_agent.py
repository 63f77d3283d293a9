"""The delivery agent: begin -> write -> commit/abort into real maildirs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailsuite.delivery.agent import HELD_MAX, MaildirDeliveryAgent
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Envelope, LocalTarget, MailboxChange
from mailsuite.storage.store import MaildirStore


class Hub:
    def __init__(self) -> None:
        self.changes: list[MailboxChange] = []

    def subscribe(
        self, account: str, callback: Callable[[MailboxChange], None]
    ) -> Callable[[], None]:
        return lambda: None

    def publish(self, change: MailboxChange) -> None:
        self.changes.append(change)


MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\n" + b"x" * 5000 + b"\r\n"


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def store(tmp_path: Path, hub: Hub) -> MaildirStore:
    return MaildirStore(tmp_path / "mail", hub=hub)


def deliver(
    agent: MaildirDeliveryAgent, targets: dict[str, list[LocalTarget]], data: bytes = MESSAGE
):
    d = agent.begin(Envelope("a@example.org", list(targets)))
    for i in range(0, len(data), 1000):
        d.write(data[i : i + 1000])
    assert d.size() == len(data)
    return d.commit(targets)


def test_delivery_to_several_recipients(store: MaildirStore, hub: Hub, tmp_path: Path) -> None:
    agent = MaildirDeliveryAgent(store)
    targets = {
        "bob@example.org": [LocalTarget("bob@example.org")],
        "ann@example.org": [
            LocalTarget("ann@example.org"),
            LocalTarget("ann@example.org", "Archive"),
        ],
    }
    results = deliver(agent, targets)
    assert [r.recipient for r in results] == list(targets)
    assert all(r.error is None for r in results)
    bob = store.account("bob@example.org")
    assert {f.name for f in bob.folders()} >= {
        "INBOX",
        "Sent",
        "Trash",
    }  # created on first delivery
    inbox = bob.open("INBOX")
    assert len(inbox.messages()) == 1
    with inbox.open_message(inbox.messages()[0].uid) as f:
        assert f.read() == MESSAGE
    ann = store.account("ann@example.org")
    assert len(ann.open("INBOX").messages()) == 1
    assert len(ann.open("Archive").messages()) == 1
    assert not os.listdir(agent.spool_dir)  # spool file removed
    kinds = {(c.account, c.folder, c.kind) for c in hub.changes}
    assert ("ann@example.org", "Archive", "added") in kinds
    assert ("bob@example.org", "INBOX", "added") in kinds


def test_delivered_message_gets_uid_at_next_sync(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    acct = store.account("bob@example.org")
    acct.ensure_created()
    box = acct.open("INBOX")
    deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org")]})
    assert box.changed_on_disk()
    result = box.sync()
    assert len(result.added) == 1
    assert not os.listdir(box.path / "new")


def test_missing_folder_falls_back_to_inbox(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    results = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org", "No/Such")]})
    assert results[0].error is None
    assert len(store.account("bob@example.org").open("INBOX").messages()) == 1


def test_over_quota_and_unknown_mailbox(store: MaildirStore) -> None:
    limits = {"small@example.org": (1000, 0), "few@example.org": (0, 1)}
    agent = MaildirDeliveryAgent(store, quota_lookup=lambda a: limits.get(a, (0, 0)))
    targets = {
        "small@example.org": [LocalTarget("small@example.org")],
        "few@example.org": [LocalTarget("few@example.org")],
        "bad": [LocalTarget("no-at-sign")],
        "ok@example.org": [LocalTarget("ok@example.org")],
    }
    results = {r.recipient: r for r in deliver(agent, targets)}
    assert results["small@example.org"].error.kind is ErrorKind.OVER_QUOTA
    assert results["few@example.org"].error is None
    assert results["bad"].error.kind is ErrorKind.UNKNOWN_MAILBOX
    assert results["ok@example.org"].error is None
    again = {
        r.recipient: r for r in deliver(agent, {"few@example.org": targets["few@example.org"]})
    }
    assert again["few@example.org"].error.kind is ErrorKind.OVER_QUOTA
    assert store.account("few@example.org").usage() == (len(MESSAGE), 1)


def test_abort_removes_spool(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    d.write(b"Subject: x\r\n")
    d.write(b"x" * HELD_MAX)  # outgrows memory: spooled
    assert len(os.listdir(agent.spool_dir)) == 1
    d.abort()
    assert not os.listdir(agent.spool_dir)
    small = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    small.write(b"Subject: x\r\n")
    small.abort()
    assert not os.listdir(agent.spool_dir)
    with pytest.raises(MailError):
        small.write(b"more")


def test_bare_lf_split_across_writes(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    for piece in (b"Subject: x\r", b"\n\r", b"\nbody\n", b"end\r"):
        d.write(piece)
    d.commit({"bob@example.org": [LocalTarget("bob@example.org")]})
    box = store.account("bob@example.org").open("INBOX")
    with box.open_message(box.messages()[0].uid) as f:
        assert f.read() == b"Subject: x\r\n\r\nbody\r\nend\r"


def test_concurrent_commits_all_durable(store: MaildirStore) -> None:
    import threading

    agent = MaildirDeliveryAgent(store)
    errors: list[object] = []

    def worker() -> None:
        for _ in range(10):
            res = deliver(
                agent, {"bob@example.org": [LocalTarget("bob@example.org")]}, b"S: x\r\n\r\n.\r\n"
            )
            errors.extend(r.error for r in res if r.error is not None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    box = store.account("bob@example.org").open("INBOX")
    assert len(box.messages()) == 80
    assert len({m.uid for m in box.messages()}) == 80


# -- one target: the spool file is renamed into new/ ------------------------
def _files(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


def test_single_target_renames_the_spool_file(store: MaildirStore, hub: Hub) -> None:
    agent = MaildirDeliveryAgent(store)
    results = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org")]})
    assert results[0].error is None
    assert _files(agent.spool_dir) == []
    root = store.account_path("bob@example.org")
    (name,) = _files(root / "new")
    assert name.endswith(f",S={len(MESSAGE)},W={len(MESSAGE)}")
    assert (root / "new" / name).read_bytes() == MESSAGE
    assert os.stat(root / "new" / name).st_nlink == 1
    assert _files(root / "tmp") == []
    assert ("bob@example.org", "INBOX", "added") in {
        (c.account, c.folder, c.kind) for c in hub.changes
    }


def test_single_target_into_a_folder(store: MaildirStore, hub: Hub) -> None:
    acct = store.account("bob@example.org")
    acct.ensure_created()
    acct.create_folder("Lists/Dev")
    agent = MaildirDeliveryAgent(store)
    results = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org", "Lists/Dev")]})
    assert results[0].error is None
    assert len(acct.open("Lists/Dev").messages()) == 1
    assert len(acct.open("INBOX").messages()) == 0
    assert ("bob@example.org", "Lists/Dev", "added") in {
        (c.account, c.folder, c.kind) for c in hub.changes
    }


def test_single_target_over_quota_leaves_nothing(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store, quota_lookup=lambda a: (len(MESSAGE) + 10, 0))
    target = {"bob@example.org": [LocalTarget("bob@example.org")]}
    assert deliver(agent, target)[0].error is None
    second = deliver(agent, target)[0]
    assert second.error is not None and second.error.kind is ErrorKind.OVER_QUOTA
    root = store.account_path("bob@example.org")
    assert len(_files(root / "new")) == 1
    assert _files(root / "tmp") == []
    assert store.account("bob@example.org").usage() == (len(MESSAGE), 1)


def test_single_target_failed_fsync_publishes_nothing(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = MaildirDeliveryAgent(store)
    store.account("bob@example.org").ensure_created()

    def broken(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    result = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org")]})[0]
    monkeypatch.undo()
    assert result.error is not None and result.error.kind is ErrorKind.TEMPORARY
    root = store.account_path("bob@example.org")
    assert _files(root / "new") == [] and _files(root / "tmp") == []


def test_single_target_recreates_a_vanished_account(store: MaildirStore) -> None:
    import shutil

    agent = MaildirDeliveryAgent(store)
    target = {"bob@example.org": [LocalTarget("bob@example.org")]}
    deliver(agent, target)
    shutil.rmtree(store.account_path("bob@example.org"))
    assert deliver(agent, target)[0].error is None
    assert len(store.account("bob@example.org").open("INBOX").messages()) == 1


def test_recipient_already_covered_counts_as_delivered(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    targets = {
        "bob@example.org": [LocalTarget("bob@example.org")],
        "alias@example.org": [],  # its only target was bob, given directly
    }
    results = deliver(agent, targets)
    assert [(r.recipient, r.error) for r in results] == [
        ("bob@example.org", None),
        ("alias@example.org", None),
    ]
    assert len(store.account("bob@example.org").open("INBOX").messages()) == 1


def test_several_targets_are_hard_links(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    targets = {
        "team@example.org": [LocalTarget("bob@example.org"), LocalTarget("ann@example.org")]
    }
    assert deliver(agent, targets)[0].error is None
    inodes = set()
    for who in ("bob", "ann"):
        new = store.account_path(f"{who}@example.org") / "new"
        (name,) = _files(new)
        st = os.stat(new / name)
        assert st.st_nlink == 2
        inodes.add(st.st_ino)
    assert len(inodes) == 1
    assert _files(agent.spool_dir) == []


def test_large_single_target_goes_through_the_spool(store: MaildirStore) -> None:
    agent = MaildirDeliveryAgent(store)
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * (HELD_MAX // 1000 + 5)
    results = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org")]}, big)
    assert results[0].error is None
    assert _files(agent.spool_dir) == []
    new = store.account_path("bob@example.org") / "new"
    (name,) = _files(new)
    assert (new / name).read_bytes() == big


def test_unique_names_carry_the_pid_of_a_forked_child() -> None:
    from mailsuite.storage.fsutil import UniqueNames

    names = UniqueNames()
    assert f"P{os.getpid()}Q" in names.new(1.5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one name and leave at once
        try:
            os.write(write, names.new(1.5).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_name = os.read(read, 1000).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert f"P{pid}Q" in child_name
    assert f"P{os.getpid()}Q" in names.new(1.5)


def test_dir_syncer_keeps_a_bounded_number_of_idle_states(tmp_path: Path) -> None:
    from mailsuite.storage.fsutil import DirSyncer

    syncer = DirSyncer()
    syncer.KEEP_IDLE = 3
    for i in range(6):
        (tmp_path / str(i)).mkdir()
        syncer.sync(tmp_path / str(i))
        syncer.sync(tmp_path / str(i))  # a kept state serves the next sync
    assert len(syncer._dirs) <= 4


def test_single_target_spool_on_another_file_system_is_linked_or_copied(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    agent = MaildirDeliveryAgent(store)
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        if str(src).startswith(str(agent.spool_dir)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    results = deliver(agent, {"bob@example.org": [LocalTarget("bob@example.org")]})
    monkeypatch.undo()
    assert results[0].error is None
    assert _files(agent.spool_dir) == []
    new = store.account_path("bob@example.org") / "new"
    (name,) = _files(new)
    assert (new / name).read_bytes() == MESSAGE


def test_last_target_refused_leaves_the_others_and_no_spool(store: MaildirStore) -> None:
    limits = {"full@example.org": (10, 0)}
    agent = MaildirDeliveryAgent(store, quota_lookup=lambda a: limits.get(a, (0, 0)))
    targets = {
        "bob@example.org": [LocalTarget("bob@example.org")],
        "full@example.org": [LocalTarget("full@example.org")],
    }
    results = {r.recipient: r.error for r in deliver(agent, targets)}
    assert results["bob@example.org"] is None
    error = results["full@example.org"]
    assert error is not None and error.kind is ErrorKind.OVER_QUOTA
    assert _files(agent.spool_dir) == []
    new = store.account_path("bob@example.org") / "new"
    (name,) = _files(new)
    assert (new / name).read_bytes() == MESSAGE and os.stat(new / name).st_nlink == 1
    assert _files(store.account_path("full@example.org") / "new") == []


def test_clean_spool_removes_only_old_debris(store: MaildirStore, tmp_path: Path) -> None:
    agent = MaildirDeliveryAgent(store, spool_dir=tmp_path / "spool")
    assert agent.clean_spool() == 0  # no spool directory yet
    (tmp_path / "spool").mkdir()
    old, fresh = tmp_path / "spool" / "old", tmp_path / "spool" / "fresh"
    old.write_bytes(b"cut short by a crash")
    fresh.write_bytes(b"being received")
    os.utime(old, (0, 0))
    assert agent.clean_spool() == 1
    assert not old.exists() and fresh.exists()
