"""``MaildirMailbox.changed_on_disk``: no listing after the view's own STORE,
at once for other writers' changes, and a foreign change hidden by an
unchanged (too recent to trust) directory mtime is found by the deadline."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from mailsuite.storage import mailbox as mailbox_mod
from mailsuite.storage import scan as scan_mod
from mailsuite.storage.mailbox import MaildirMailbox
from mailsuite.storage.store import MaildirStore

ADDRESS = "bob@example.org"


class Clock:
    """What ``time.time()`` says to the scan and ``changed_on_disk`` (the
    directory mtimes stay real): frozen, so a slow test run cannot make a
    recent mtime trusted or pass a deadline by itself."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(mailbox_mod, "time", fake)
    monkeypatch.setattr(scan_mod, "time", fake)
    return fake


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> MaildirStore:
    return MaildirStore(tmp_path / "mail")


@pytest.fixture
def box(store: MaildirStore) -> MaildirMailbox:
    mailbox = store.account(ADDRESS).open("INBOX")
    for n in range(4):
        mailbox.append(io.BytesIO(b"Subject: %d\r\n\r\nbody\r\n" % n))
    mailbox.sync()
    mailbox.sync()  # cur/ listed after the move from new/
    return mailbox


def _uids(box: MaildirMailbox) -> list[int]:
    return [m.uid for m in box.messages()]


def _foreign_rename_same_mtime(box: MaildirMailbox) -> str:
    """Another program's flag change in the same timestamp tick as the
    view's last look at cur/ (the mtime is put back to what it was)."""
    cur = box.path / "cur"
    st = os.stat(cur)
    name = sorted(os.listdir(cur))[0]
    os.rename(cur / name, cur / (name.split(":")[0] + ":2,T"))
    os.utime(cur, ns=(st.st_atime_ns, st.st_mtime_ns))
    return name


def test_quiet_after_own_store(box: MaildirMailbox) -> None:
    assert not box.changed_on_disk()
    box.store_flags(_uids(box)[:2], ["\\Seen"], "add")
    assert not box.changed_on_disk()  # our own renames: nothing to list
    box.store_flags(_uids(box)[:2], ["\\Seen"], "remove")
    assert not box.changed_on_disk()


def test_other_views_store_is_seen_at_once(store: MaildirStore, box: MaildirMailbox) -> None:
    other = MaildirStore(store.root).account(ADDRESS).open("INBOX")
    other.store_flags(_uids(box)[:1], ["\\Flagged"], "add")
    assert box.changed_on_disk()  # the modseq log changed
    assert box.sync().flags_changed == _uids(box)[:1]
    assert not box.changed_on_disk()


def test_foreign_change_with_a_new_mtime_is_seen_at_once(box: MaildirMailbox) -> None:
    cur = box.path / "cur"
    name = sorted(os.listdir(cur))[0]
    os.rename(cur / name, cur / (name.split(":")[0] + ":2,T"))
    st = os.stat(cur)
    os.utime(cur, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))  # a later tick
    assert box.changed_on_disk()


def test_same_tick_foreign_change_found_by_the_deadline(box: MaildirMailbox, clock: Clock) -> None:
    box.sync()
    _foreign_rename_same_mtime(box)
    assert not box.changed_on_disk()  # hidden by the unchanged mtime for now
    clock.now += 2  # past the deadline
    assert box.changed_on_disk()  # past the deadline: list once more
    assert box.sync().flags_changed == _uids(box)[:1]


def test_own_stores_do_not_postpone_the_deadline(box: MaildirMailbox, clock: Clock) -> None:
    box.sync()
    _foreign_rename_same_mtime(box)
    box.store_flags(_uids(box)[1:2], ["\\Seen"], "add")
    box.store_flags(_uids(box)[2:3], ["\\Seen"], "add")
    assert not box.changed_on_disk()
    clock.now += 2  # past the deadline
    assert box.changed_on_disk()
    assert box.sync().flags_changed == _uids(box)[:1]


def test_sync_itself_never_trusts_a_recent_mtime(box: MaildirMailbox) -> None:
    box.sync()
    _foreign_rename_same_mtime(box)
    assert box.sync().flags_changed == _uids(box)[:1]
