"""Concurrent STOREs on one folder from several views never report a present
message as missing (bench/imap.py --shared once saw a spurious EXPUNGEISSUED:
a file renamed twice by other sessions during one STORE looked expunged)."""

from __future__ import annotations

import threading

from mailsuite.storage.account import MaildirAccount
from tests.storage.conftest import msg


def test_concurrent_stores_see_every_message(account: MaildirAccount) -> None:
    inbox = account.open("INBOX")
    uids = [inbox.append(msg(i)) for i in range(50)]
    failures: list[str] = []

    def worker(n: int) -> None:
        view = account.open("INBOX")
        view.sync()
        flag = "\\Flagged" if n % 2 else "\\Seen"
        for i in range(15):
            mode = "add" if i % 2 == 0 else "remove"
            done = view.store_flags(uids, [flag], mode)
            if len(done) != len(uids):
                failures.append(f"worker {n} round {i}: {len(done)} of {len(uids)}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    view = account.open("INBOX")
    view.sync()
    assert [m.uid for m in view.messages()] == uids
