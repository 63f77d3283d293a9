"""Fixtures for storage tests: a real Maildir store on a temporary directory."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.mailbox import MaildirMailbox
from mailsuite.storage.store import MaildirStore


class RecordingHub:
    """A ChangeHub that records publications (thread-safe enough for tests)."""

    def __init__(self) -> None:
        self.changes: list[object] = []

    def subscribe(self, account: str, callback: Callable[[object], None]) -> Callable[[], None]:
        return lambda: None

    def publish(self, change: object) -> None:
        self.changes.append(change)


@pytest.fixture
def hub() -> RecordingHub:
    return RecordingHub()


@pytest.fixture
def store(tmp_path: Path, hub: RecordingHub) -> MaildirStore:
    return MaildirStore(tmp_path / "mail", hub=hub)


@pytest.fixture
def account(store: MaildirStore) -> MaildirAccount:
    acct = store.account("bob@example.org")
    acct.ensure_created()
    return acct


@pytest.fixture
def inbox(account: MaildirAccount) -> MaildirMailbox:
    return account.open("INBOX")


def msg(n: int = 0, body: bytes = b"hello\r\n") -> io.BytesIO:
    return io.BytesIO(b"From: a@example.org\r\nSubject: test %d\r\n\r\n" % n + body)
