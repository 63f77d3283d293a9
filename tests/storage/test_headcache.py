"""The in-memory header cache (``storage/headcache.py``) and
``MaildirMailbox.header_entries``: bounded, and right after other processes
rename (flag change), remove (expunge) or add messages."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mailsuite.storage.headcache import HeaderCache
from mailsuite.storage.mailbox import MaildirMailbox
from mailsuite.storage.store import MaildirStore

ADDRESS = "bob@example.org"


def _message(n: int) -> bytes:
    return b"From: sender%d@example.org\r\nSubject: number %d\r\n\r\nbody %d\r\n" % (n, n, n)


@pytest.fixture
def store(tmp_path: Path) -> MaildirStore:
    return MaildirStore(tmp_path / "mail")


@pytest.fixture
def box(store: MaildirStore) -> MaildirMailbox:
    mailbox = store.account(ADDRESS).open("INBOX")
    for n in range(5):
        mailbox.append(io.BytesIO(_message(n)))
    mailbox.sync()
    return mailbox


def _other(store: MaildirStore) -> MaildirMailbox:
    """The same folder seen by another process (its own store and caches)."""
    return MaildirStore(store.root).account(ADDRESS).open("INBOX")


def test_cache_is_bounded_lru() -> None:
    cache = HeaderCache(limit=3000)
    for n in range(10):
        cache.put("/f", f"b{n}", b"x" * 500)
        cache.get("/f", "b0")  # keep the first one fresh
    assert cache.total <= 3000
    assert cache.get("/f", "b0") is not None
    assert cache.get("/f", "b9") is not None
    assert cache.get("/f", "b1") is None
    assert len(cache) < 10


def test_memo_is_charged_and_capped() -> None:
    cache = HeaderCache(limit=64_000)
    entry = cache.put("/f", "b", b"head")
    before = cache.total
    assert entry.remember("k", "value") == "value"
    assert cache.total > before
    for n in range(100):
        entry.remember(f"k{n}", b"v")
    assert len(entry.memo) == 16
    other = cache.put("/f", "c", b"y")
    assert other.remember("big", "z" * 20_000) == "z" * 20_000
    assert "big" not in other.memo  # bigger than 1/64 of the cache: not kept
    other.remember("fits", "z" * 500)
    assert other.memo["fits"] == "z" * 500
    for n in range(200):  # growing memos push old entries out
        cache.put("/g", f"e{n}", b"h").remember("v", "w" * 500)
    assert cache.get("/f", "b") is None
    assert cache.total <= 64_000


def test_entries_are_the_header_bytes(box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    got = box.header_entries([*uids, 999])
    assert set(got) == set(uids)
    for uid in uids:
        assert got[uid].raw == box.header_bytes(uid)
    again = box.header_entries(uids)
    assert all(again[u] is got[u] for u in uids)  # hits: the same entries


def test_shared_by_views_of_one_store(store: MaildirStore, box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    first = box.header_entries(uids)
    other_view = store.account(ADDRESS).open("INBOX")
    assert all(other_view.header_entries(uids)[u] is first[u] for u in uids)


def test_flag_change_by_another_process(store: MaildirStore, box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    first = box.header_entries(uids)
    _other(store).store_flags([uids[0]], ["\\Seen"], "add")  # renames the file
    cur = box.path / "cur"
    name = next(n for n in os.listdir(cur) if n.endswith("2,"))
    os.rename(cur / name, cur / (name + "F"))  # a foreign writer's flag change
    box.sync()
    got = box.header_entries(uids)
    assert all(got[u] is first[u] for u in uids)  # the content did not change
    assert got[uids[0]].raw == box.header_bytes(uids[0])


def test_expunge_by_another_process(store: MaildirStore, box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    box.header_entries(uids)
    other = _other(store)
    other.store_flags(uids[:2], ["\\Deleted"], "add")
    other.expunge()
    box.sync()
    assert set(box.header_entries(uids)) == set(uids[2:])


def test_expunge_not_yet_synced(store: MaildirStore, box: MaildirMailbox) -> None:
    """A file removed behind the view's back: an entry read before is served
    from memory (the view still lists it), one never read is left out."""
    uids = [m.uid for m in box.messages()]
    box.header_entries(uids[:1])
    cur = box.path / "cur"
    for name in os.listdir(cur):
        os.unlink(cur / name)
    got = box.header_entries(uids)
    assert set(got) <= {uids[0]}


def test_new_mail_from_another_process(store: MaildirStore, box: MaildirMailbox) -> None:
    box.header_entries([m.uid for m in box.messages()])
    other = _other(store)
    new_uid = other.append(io.BytesIO(_message(77)))
    (box.path / "new" / "1700000000.M1P1.foreign").write_bytes(_message(78))
    box.sync()
    uids = [m.uid for m in box.messages()]
    assert new_uid in uids and len(uids) == 7
    got = box.header_entries(uids)
    assert set(got) == set(uids)
    assert got[new_uid].raw.startswith(b"From: sender77@")
    assert got[uids[-1]].raw.startswith(b"From: sender78@")


def test_message_bytes_kept_in_the_body_cache(store: MaildirStore, box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    assert box.cached_message(uids[0]) is None
    with box.open_message(uids[0]) as f:
        raw = f.read()
    assert box.message_bytes(uids[0]) == raw
    assert box.cached_message(uids[0]) == raw
    other = _other(store)
    other.store_flags([uids[0]], ["\\Seen"], "add")  # a rename keeps the content
    box.sync()
    assert box.cached_message(uids[0]) == raw
    other.store_flags([uids[0]], ["\\Deleted"], "add")
    other.expunge()
    box.sync()
    assert box.cached_message(uids[0]) is None  # gone from the view: never served
    new_uid = other.append(io.BytesIO(_message(99)))
    box.sync()
    assert box.message_bytes(new_uid) == _message(99)
    assert box.cached_message(new_uid) == _message(99)


def test_big_messages_are_not_kept(box: MaildirMailbox) -> None:
    from mailsuite.storage.reading import BODY_CACHE_MAX

    big = b"Subject: big\r\n\r\n" + b"x" * BODY_CACHE_MAX + b"\r\n"
    uid = box.append(io.BytesIO(big))
    box.sync()
    assert box.message_bytes(uid) == big
    assert box.cached_message(uid) is None


def test_a_zero_limit_keeps_nothing_but_still_answers() -> None:
    from mailsuite.storage.headcache import HeaderCache

    cache = HeaderCache(0)
    entry = cache.put("INBOX", "1.M1P1.h", b"Subject: x\r\n\r\n")
    assert entry.raw == b"Subject: x\r\n\r\n"
    assert cache.get("INBOX", "1.M1P1.h") is None and cache.total == 0


def test_cache_sizes_come_from_the_config(tmp_path: Path) -> None:
    from twisted.internet import reactor

    from mailsuite.config import load
    from mailsuite.service import build_context
    from mailsuite.threads import InlineRunner

    path = tmp_path / "m.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[imap]\nheader_cache_mb = 0\nbody_cache_mb = 3\n'
    )
    context = build_context(load(path), reactor, runner=InlineRunner(), tls=object())
    try:
        assert context.store.heads.limit == 0  # type: ignore[attr-defined]
        assert context.store.bodies.limit == 3 * 1024 * 1024  # type: ignore[attr-defined]
    finally:
        context.directory.close()  # type: ignore[attr-defined]
