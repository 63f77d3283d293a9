"""sync(): other writers, foreign files, tmp/ cleanup, the index as a pure cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage import mailbox as mailbox_mod
from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.index import CACHE_FILE, INDEX_FILE
from mailsuite.storage.mailbox import MaildirMailbox
from tests.storage.conftest import msg


def drop(folder: Path, sub: str, name: str, data: bytes = b"Subject: x\r\n\r\nhi\r\n") -> Path:
    path = folder / sub / name
    path.write_bytes(data)
    return path


def age_dirs(folder: Path, seconds: float = 10) -> None:
    """Make directory mtimes old enough to be trusted by the snapshot."""
    past = time.time() - seconds
    for sub in ("cur", "new"):
        os.utime(folder / sub, (past, past))


def test_foreign_files_tolerated(inbox: MaildirMailbox) -> None:
    root = inbox.path
    drop(root, "cur", "noinfo-file")  # no :2,
    drop(root, "cur", "weird:2,SXZ9")  # unknown letters
    drop(root, "cur", "other:1,foo")  # experimental info
    drop(root, "new", "plain.new.file")
    drop(root, "cur", ".hidden")  # dot files are not messages
    result = inbox.sync()
    assert len(result.added) == 4
    flags = {m.uid: m.flags for m in inbox.messages()}
    assert frozenset({"\\Seen"}) in flags.values()
    uid = max(flags)
    inbox.store_flags(list(flags), ["\\Flagged"], "add")
    names = sorted(os.listdir(root / "cur"))
    assert any(n.startswith("weird:2,") and "X" in n and "Z" in n and "9" in n for n in names)
    assert not os.listdir(root / "new")
    with inbox.open_message(uid) as f:
        assert f.read().startswith(b"Subject")


def test_lf_only_foreign_file_served_as_crlf(inbox: MaildirMailbox) -> None:
    drop(inbox.path, "cur", "lf:2,S", b"Subject: x\n\nline1\nline2\n")
    inbox.sync()
    info = inbox.messages()[0]
    with inbox.open_message(info.uid) as f:
        data = f.read()
    assert data == b"Subject: x\r\n\r\nline1\r\nline2\r\n"
    assert info.size == len(data)


def test_external_rename_and_delete_noticed(inbox: MaildirMailbox) -> None:
    a = inbox.append(msg(1))
    b = inbox.append(msg(2))
    inbox.sync()
    cur = inbox.path / "cur"
    name_a = next(n for n in os.listdir(cur) if n.endswith(":2,") and "Q" in n)
    files = {m.uid: m for m in inbox.messages()}
    assert set(files) == {a, b}
    os.rename(cur / name_a, cur / (name_a + "S"))
    other = sorted(os.listdir(cur))
    os.unlink(cur / next(n for n in other if n != name_a + "S"))
    result = inbox.sync()
    assert len(result.expunged) == 1
    assert len(result.flags_changed) == 1
    assert inbox.messages()[0].flags == frozenset({"\\Seen"})


def test_store_follows_foreign_rename(account: MaildirAccount) -> None:
    box = account.open("INBOX")
    uid = box.append(msg())
    box.sync()
    cur = box.path / "cur"
    (name,) = os.listdir(cur)
    os.rename(cur / name, cur / (name + "F"))  # flagged by someone else, not yet synced
    assert box.store_flags([uid], ["\\Seen"], "add")[uid] == frozenset({"\\Seen", "\\Flagged"})


def test_old_tmp_files_removed(inbox: MaildirMailbox, account: MaildirAccount) -> None:
    old = drop(inbox.path, "tmp", "old.tmp")
    young = drop(inbox.path, "tmp", "young.tmp")
    past = time.time() - 37 * 3600
    os.utime(old, (past, past))
    account.open("INBOX")
    assert not old.exists()
    assert young.exists()


def test_index_is_a_pure_cache(account: MaildirAccount) -> None:
    box = account.open("INBOX")
    uids = [box.append(msg(i), ["\\Seen"] if i % 2 else []) for i in range(5)]
    box.sync()
    before = [(m.uid, m.flags, m.size, m.internaldate) for m in box.messages()]
    (box.path / INDEX_FILE).unlink()
    (box.path / CACHE_FILE).unlink(missing_ok=True)
    again = account.open("INBOX")
    assert [(m.uid, m.flags, m.size, m.internaldate) for m in again.messages()] == before
    assert [m.uid for m in again.messages()] == uids
    (box.path / INDEX_FILE).write_bytes(b"garbage")
    assert [m.uid for m in account.open("INBOX").messages()] == uids


def test_warm_open_does_not_scan(account: MaildirAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    box = account.open("INBOX")
    for i in range(3):
        box.append(msg(i))
    age_dirs(box.path)
    box.sync()  # records trusted signatures in the index
    assert not box.changed_on_disk()

    def no_listing(path: object) -> list[str]:
        raise AssertionError(f"directory scanned: {path}")

    monkeypatch.setattr(mailbox_mod.os, "listdir", no_listing)
    warm = account.open("INBOX")
    assert len(warm.messages()) == 3
    assert warm.sync().added == []


def test_uidlist_deleted_is_recreated_with_same_uids(account: MaildirAccount) -> None:
    box = account.open("INBOX")
    uids = [box.append(msg(i)) for i in range(3)]
    box.sync()
    validity = box.uidvalidity
    (box.path / "dovecot-uidlist").unlink()
    box.sync()
    assert [m.uid for m in box.messages()] == uids
    assert box.uidvalidity == validity
    assert box.append(msg()) > uids[-1]


def test_folder_deleted_while_open(account: MaildirAccount) -> None:
    account.create_folder("Gone")
    box = account.open("Gone")
    account.delete_folder("Gone")
    with pytest.raises(MailError) as exc:
        box.sync()
    assert exc.value.kind is ErrorKind.NONEXISTENT


def test_uidlist_format_is_dovecot_v3(inbox: MaildirMailbox) -> None:
    inbox.append(msg())
    inbox.sync()
    lines = (inbox.path / "dovecot-uidlist").read_text().splitlines()
    head = lines[0].split()
    assert head[0] == "3"
    assert head[1] == f"V{inbox.uidvalidity}"
    assert head[2].startswith("N")
    assert head[3].startswith("G") and len(head[3]) == 33
    uid, base = lines[-1].split(" :")
    assert uid == "1" and ":" not in base and ",S=" in base


def test_duplicate_base_gets_new_uid(inbox: MaildirMailbox) -> None:
    drop(inbox.path, "cur", "dup:2,S")
    inbox.sync()
    drop(inbox.path, "cur", "dup:2,F")
    inbox.sync()
    inbox.sync()
    assert len(inbox.messages()) == 2
    assert len({m.uid for m in inbox.messages()}) == 2


def test_header_end_and_structure_cache(inbox: MaildirMailbox) -> None:
    import io

    uid = inbox.append(io.BytesIO(b"Subject: x\r\nX-A: b\r\n\r\nbody\r\n"))
    inbox.sync()
    assert inbox.header_end(uid) == len(b"Subject: x\r\nX-A: b\r\n\r\n")
    (inbox.path / CACHE_FILE).unlink()  # a pure cache: recomputed
    assert inbox.header_end(uid) == len(b"Subject: x\r\nX-A: b\r\n\r\n")
    try:
        import mailsuite.mime.structure  # noqa: F401
    except ImportError:
        with pytest.raises(MailError) as exc:
            inbox.structure(uid)
        assert exc.value.kind is ErrorKind.INTERNAL
    else:
        assert inbox.structure(uid) is not None
    inbox.store_flags([uid], ["\\Deleted"], "add")
    inbox.expunge()
    with pytest.raises(MailError) as exc:
        inbox.header_end(uid)
    assert exc.value.kind is ErrorKind.EXPUNGED
