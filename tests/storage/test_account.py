"""Folders, special use, subscriptions and quota usage of one account."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.store import MaildirStore
from tests.storage.conftest import msg


def names(account: MaildirAccount) -> list[str]:
    return [f.name for f in account.folders()]


def test_new_account_layout(account: MaildirAccount) -> None:
    root = account.root
    assert root.parts[-2:] == ("example.org", "bob")
    for sub in ("cur", "new", "tmp"):
        assert (root / sub).is_dir()
    infos = {f.name: f for f in account.folders()}
    assert set(infos) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert infos["Sent"].special_use == "\\Sent"
    assert infos["Junk"].special_use == "\\Junk"
    assert infos["INBOX"].special_use is None
    assert all(f.subscribed for f in infos.values())
    assert (root / ".Sent" / "maildirfolder").exists()
    assert (root / "subscriptions").read_text().startswith("V\t2\n\n")
    account.ensure_created()  # idempotent
    assert len(account.folders()) == 6


def test_store_does_not_touch_disk(tmp_path: Path) -> None:
    MaildirStore(tmp_path / "mail").account("x@example.org")
    assert not (tmp_path / "mail").exists()


@pytest.mark.parametrize("address", ["nodomain", "a/b@example.org", "..@example.org", "x@.."])
def test_bad_addresses(tmp_path: Path, address: str) -> None:
    with pytest.raises(MailError) as exc:
        MaildirStore(tmp_path).account(address)
    assert exc.value.kind is ErrorKind.BAD_ADDRESS


def test_create_nested_rename_delete(account: MaildirAccount) -> None:
    account.create_folder("Work/Projects")
    assert (account.root / ".Work.Projects" / "cur").is_dir()
    infos = {f.name: f for f in account.folders()}
    assert "Work/Projects" in infos and "Work" not in infos
    with pytest.raises(MailError) as exc:
        account.create_folder("Work/Projects")
    assert exc.value.kind is ErrorKind.ALREADY_EXISTS
    account.create_folder("Work")
    assert {f.name: f for f in account.folders()}["Work"].has_children
    box = account.open("Work/Projects")
    uid = box.append(msg())
    account.subscribe("Work/Projects", True)
    account.rename_folder("Work", "Old")
    assert "Old/Projects" in names(account) and "Work" not in names(account)
    moved = account.open("Old/Projects")
    assert [m.uid for m in moved.messages()] == [uid]
    assert {f.name: f for f in account.folders()}["Old/Projects"].subscribed
    with pytest.raises(MailError):
        account.rename_folder("Old", "Old/Inner")
    account.delete_folder("Old/Projects")
    assert "Old/Projects" not in names(account)
    assert not [e for e in os.listdir(account.root) if e.startswith("..")]
    with pytest.raises(MailError) as exc:
        account.delete_folder("Old/Projects")
    assert exc.value.kind is ErrorKind.NONEXISTENT
    with pytest.raises(MailError) as exc:
        account.open("Old/Projects")
    assert exc.value.kind is ErrorKind.NONEXISTENT


def test_inbox_rules(account: MaildirAccount) -> None:
    with pytest.raises(MailError) as exc:
        account.delete_folder("inbox")
    assert exc.value.kind is ErrorKind.BAD_NAME
    with pytest.raises(MailError) as exc:
        account.create_folder("INBOX")
    assert exc.value.kind is ErrorKind.ALREADY_EXISTS
    inbox = account.open("INBOX")
    inbox.append(msg())
    account.rename_folder("INBOX", "Saved")
    assert len(account.open("Saved").messages()) == 1
    assert len(account.open("INBOX").messages()) == 0


@pytest.mark.parametrize("bad", ["a.b", "x//y", "/x", "../x", "a\x00"])
def test_bad_names_rejected_everywhere(account: MaildirAccount, bad: str) -> None:
    for op in (account.create_folder, account.open, account.delete_folder):
        with pytest.raises(MailError) as exc:
            op(bad)
        assert exc.value.kind is ErrorKind.BAD_NAME
    with pytest.raises(MailError):
        account.subscribe(bad, True)


def test_subscriptions_roundtrip(account: MaildirAccount) -> None:
    account.subscribe("Trash", False)
    account.subscribe("Not/There", True)
    text = (account.root / "subscriptions").read_text()
    assert "Not\tThere\n" in text and "Trash" not in text
    subs = {f.name: f.subscribed for f in account.folders()}
    assert subs["Trash"] is False


def test_usage_and_quota_file(tmp_path: Path) -> None:
    limits = {"bob@example.org": (10_000, 3)}
    store = MaildirStore(tmp_path / "mail", quota_lookup=lambda a: limits.get(a, (0, 0)))
    acct = store.account("bob@example.org")
    acct.ensure_created()
    box = acct.open("INBOX")
    assert acct.usage() == (0, 0)
    sizes = []
    for i in range(3):
        box.append(msg(i))
        box.sync()
        sizes.append(box.messages()[-1].size)
    assert acct.usage() == (sum(sizes), 3)
    assert (acct.root / "maildirsize").read_text().startswith("10000S,3C\n")
    with pytest.raises(MailError) as exc:
        box.append(msg(9))
    assert exc.value.kind is ErrorKind.OVER_QUOTA
    box.store_flags([box.messages()[0].uid], ["\\Deleted"], "add")
    box.expunge()
    assert acct.usage() == (sum(sizes[1:]), 2)
    (acct.root / "maildirsize").unlink()
    assert acct.usage() == (sum(sizes[1:]), 2)  # recomputed


def test_subscriptions_keep_names_of_deleted_folders(account: MaildirAccount) -> None:
    """RFC 3501 §6.3.6: a subscription outlives its folder (LIST-EXTENDED
    then shows it as \\NonExistent, RFC 5258 §3.1)."""
    account.create_folder("Projects/Old")
    account.subscribe("Projects/Old", True)
    account.delete_folder("Projects/Old")
    assert "Projects/Old" in account.subscriptions()
    assert "Projects/Old" not in [f.name for f in account.folders()]
    account.subscribe("Projects/Old", False)
    assert "Projects/Old" not in account.subscriptions()
