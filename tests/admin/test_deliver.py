"""``deliver`` (LDA exit codes) and the maildir side of user add/show/del, on a real Maildir."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsuite.admin import exits

from .conftest import Admin

pytest.importorskip("mailsuite.storage.store", reason="the Maildir store is not available")
pytest.importorskip("mailsuite.delivery.agent", reason="the delivery agent is not available")

MESSAGE = b"From: a@remote.example\nSubject: hi\n\nline one\r\nline two\r\n"


@pytest.fixture
def seeded(admin: Admin) -> Admin:
    admin.ok("domain", "add", "example.test")
    admin.ok("user", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    return admin


def messages(admin: Admin, user: str, folder: str = "") -> list[bytes]:
    root = admin.data / "mail" / "example.test" / user / folder
    files = sorted([*(root / "new").iterdir(), *(root / "cur").iterdir()])
    return [f.read_bytes() for f in files]


def test_user_add_creates_the_maildir(seeded: Admin) -> None:
    root = seeded.data / "mail" / "example.test" / "alice"
    assert (root / "cur").is_dir() and (root / "new").is_dir() and (root / "tmp").is_dir()
    assert (root / ".Sent").is_dir()


def test_deliver_to_user_alias_and_subaddress(seeded: Admin) -> None:
    seeded.ok("deliver", "alice@example.test", stdin=MESSAGE)
    [stored] = messages(seeded, "alice")
    assert stored.endswith(b"Subject: hi\r\n\r\nline one\r\nline two\r\n")
    assert b"\n" not in stored.replace(b"\r\n", b"")
    seeded.ok("alias", "add", "team@example.test", "alice@example.test")
    seeded.ok("deliver", "team+x@example.test", "-f", "sender@remote.example", stdin=MESSAGE)
    assert len(messages(seeded, "alice")) == 2


def test_deliver_to_a_folder(seeded: Admin) -> None:
    seeded.ok("deliver", "alice@example.test", "--mailbox", "Sent", stdin=MESSAGE)
    assert len(messages(seeded, "alice", ".Sent")) == 1
    seeded.ok("deliver", "alice@example.test", "--mailbox", "NoSuchFolder", stdin=MESSAGE)
    assert len(messages(seeded, "alice")) == 1  # unknown folders fall back to INBOX


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("nobody@example.test", exits.NOUSER),
        ("bad address@example.test", exits.DATAERR),
        ("someone@remote.example", exits.TEMPFAIL),  # not ours: an LDA cannot forward
    ],
)
def test_deliver_errors(seeded: Admin, address: str, code: int) -> None:
    r = seeded("deliver", address, stdin=MESSAGE)
    assert r.code == code, r
    assert r.err.startswith("mailsuite-admin: ")
    assert messages(seeded, "alice") == []


def test_deliver_over_quota_is_temporary(seeded: Admin) -> None:
    seeded.ok("user", "quota", "alice@example.test", "--bytes", "10")
    r = seeded("deliver", "alice@example.test", stdin=MESSAGE)
    assert r.code == exits.TEMPFAIL and "uota" in r.err


def test_deliver_io_failure_is_temporary(seeded: Admin) -> None:
    inbox = seeded.data / "mail" / "example.test" / "alice" / "new"
    inbox.rmdir()
    inbox.write_bytes(b"")  # new/ is a file now: the delivery cannot complete
    r = seeded("deliver", "alice@example.test", stdin=MESSAGE)
    assert r.code == exits.TEMPFAIL, r


def test_user_show_reports_usage(seeded: Admin) -> None:
    seeded.ok("deliver", "alice@example.test", stdin=MESSAGE)
    shown = seeded.ok("user", "show", "alice@example.test")
    assert "used:" in shown and "1 messages" in shown


def test_purge_removes_the_maildir(seeded: Admin) -> None:
    seeded.ok("deliver", "alice@example.test", stdin=MESSAGE)
    root: Path = seeded.data / "mail" / "example.test" / "alice"
    seeded.ok("user", "del", "alice@example.test", "--yes")
    assert root.is_dir()
    seeded.ok("user", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    seeded.ok("user", "del", "alice@example.test", "--yes", "--purge")
    assert not root.exists()


@pytest.mark.parametrize("name", ["../../etc", "a/../b", "/lead", "bad\x01name", "a..b"])
def test_invalid_mailbox_name_is_a_usage_error(seeded: Admin, name: str) -> None:
    r = seeded("deliver", "alice@example.test", "--mailbox", name, stdin=MESSAGE)
    assert r.code == exits.USAGE, r
    assert messages(seeded, "alice") == []
