"""The queue's files: two-phase commit, atomic state, locks, leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailsuite.delivery.queue_store import (
    DELIVERED,
    PENDING,
    QueueEntry,
    QueueStore,
    RecipientState,
    valid_id,
)
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Envelope

ENV = Envelope(
    "alice@example.test",
    ["bob@remote.test", "carol@remote.test"],
    {"RET": "HDRS", "ENVID": "abc+2Bdef"},
    {"bob@remote.test": {"NOTIFY": "SUCCESS,FAILURE"}},
)


def test_commit_makes_a_durable_entry(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    msg = store.begin(ENV, now=1000.0)
    msg.write(b"Subject: hi\r\n\r\n")
    msg.write(b"body\r\n")
    assert store.ids() == []  # nothing visible before commit
    qid = msg.commit(["bob@remote.test", "carol@remote.test", "bob@remote.test"])
    msg.abort()  # after a commit: nothing happens
    assert valid_id(qid)
    assert store.ids() == [qid]
    entry = store.load(qid)
    assert [r.address for r in entry.recipients] == ["bob@remote.test", "carol@remote.test"]
    assert entry.recipients[0].params == {"NOTIFY": "SUCCESS,FAILURE"}
    assert entry.params == {"RET": "HDRS", "ENVID": "abc+2Bdef"}
    assert (entry.created, entry.next_attempt, entry.size) == (1000.0, 1000.0, 21)
    assert store.message_path(qid).read_bytes() == b"Subject: hi\r\n\r\nbody\r\n"
    assert os.listdir(tmp_path / "q" / "tmp") == []


def test_abort_and_half_written_files_are_never_entries(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    msg = store.begin(ENV, now=1.0)
    msg.write(b"partial")
    # a crash here leaves tmp/<id>.msg: it is not an entry and cleanup removes it later
    assert store.ids() == [] and store.scan() == {}
    (tmp_path / "q" / "msg" / "00000000012345678901").write_bytes(b"orphan without state")
    assert store.cleanup(now=os.path.getmtime(tmp_path / "q" / "tmp") + 10) == []  # too young
    removed = store.cleanup(now=10**10)
    assert sorted(removed) == sorted([f"tmp/{msg.id}.msg", "msg/00000000012345678901"])
    other = store.begin(ENV, now=1.0)
    other.write(b"x")
    other.abort()
    assert os.listdir(tmp_path / "q" / "tmp") == []


def test_commit_without_recipients_is_refused(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    msg = store.begin(ENV, now=1.0)
    with pytest.raises(MailError) as e:
        msg.commit([])
    assert e.value.kind is ErrorKind.BAD_INPUT
    assert store.ids() == [] and os.listdir(tmp_path / "q" / "tmp") == []


def test_state_round_trip_and_scan_sees_updates(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    qid = store.enqueue(ENV, b"x\r\n", now=5.0)
    assert store.scan() == {qid: 5.0}
    entry = store.load(qid)
    entry.recipients[0].status = DELIVERED
    entry.next_attempt = 99.0
    store.save(entry)
    assert store.scan() == {qid: 99.0}
    again = store.load(qid)
    assert again == entry
    assert [r.status for r in again.recipients] == [DELIVERED, PENDING]


def test_finished_needs_final_and_notified() -> None:
    e = QueueEntry("0" * 19, "a@b", {}, [RecipientState("x@y")], created=0.0)
    assert not e.finished()
    e.recipients[0].status = DELIVERED
    assert not e.finished()
    e.recipients[0].notified = True
    assert e.finished()


def test_lock_is_exclusive_and_checks_existence(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    qid = store.enqueue(ENV, b"x\r\n", now=5.0)
    lock = store.lock(qid)
    assert lock is not None
    assert QueueStore(tmp_path / "q").lock(qid) is None  # held (flock per open file)
    with pytest.raises(MailError) as e:
        with store.locked(qid):
            pass
    assert e.value.kind is ErrorKind.IN_USE
    store.remove(qid)
    lock.release()
    with pytest.raises(MailError) as e:
        store.lock(qid)
    assert e.value.kind is ErrorKind.NONEXISTENT
    assert store.ids() == [] and not store.message_path(qid).exists()


def test_ids_cannot_name_other_files(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    for bad in ("../users.sqlite", "", "ABC", "x" * 50):
        with pytest.raises(MailError):
            store.load(bad)


def test_damaged_state_is_reported(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    qid = store.enqueue(ENV, b"x\r\n", now=5.0)
    (tmp_path / "q" / "env" / qid).write_bytes(b"{not json")
    with pytest.raises(MailError) as e:
        store.load(qid)
    assert e.value.kind is ErrorKind.INTERNAL
    assert store.scan() == {}


def test_system_nameservers(tmp_path: Path) -> None:
    from mailsuite.delivery.queue_mx import parse_hostport, system_nameservers

    conf = tmp_path / "resolv.conf"
    conf.write_text("# c\nsearch x\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n")
    assert system_nameservers(str(conf)) == [("192.0.2.53", 53), ("fe80::1", 53)]
    assert system_nameservers(str(tmp_path / "missing")) == [("127.0.0.1", 53)]
    assert parse_hostport("[::1]:5353", 53) == ("::1", 5353)
    assert parse_hostport("relay.test", 25) == ("relay.test", 25)
    with pytest.raises(ValueError):
        parse_hostport("relay.test:0", 25)
