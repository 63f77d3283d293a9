"""``Mailbox.messages()`` is a fixed listing: later changes of the view (own
stores, keyword files, syncs) do not alter the items it gives, so the IMAP
layer can keep it as its selected view and read it from any thread."""

from __future__ import annotations

import threading

from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.mailbox import MaildirMailbox
from tests.storage.conftest import msg


def test_listing_is_not_changed_by_later_stores(inbox: MaildirMailbox) -> None:
    uids = [inbox.append(msg(i)) for i in range(3)]
    inbox.sync()
    before = inbox.messages()
    old = [(m.uid, m.flags, m.modseq) for m in before]
    inbox.store_flags(uids[:2], ["\\Flagged", "$Work"], "add")
    assert [(m.uid, m.flags, m.modseq) for m in before] == old
    after = inbox.messages()
    assert after[0].flags == {"\\Flagged", "$Work"}
    assert after[0].modseq > before[0].modseq
    assert after[2].modseq == before[2].modseq


def test_listing_survives_a_foreign_change_and_sync(
    account: MaildirAccount, inbox: MaildirMailbox
) -> None:
    uid = inbox.append(msg(1))
    inbox.sync()
    before = inbox.messages()
    other = account.open("INBOX")
    other.store_flags([uid], ["\\Seen"], "add")
    other.expunge()  # nothing \\Deleted: no change
    inbox.sync()
    assert before[0].flags == frozenset()
    assert inbox.messages()[0].flags == {"\\Seen"}


def test_listing_read_while_another_thread_stores(inbox: MaildirMailbox) -> None:
    uids = [inbox.append(msg(i)) for i in range(50)]
    inbox.sync()
    listing = inbox.messages()
    expected = [(m.uid, m.flags, m.modseq) for m in listing]
    errors: list[BaseException] = []

    def store() -> None:
        try:
            for u in uids:
                inbox.store_flags([u], ["\\Answered"], "add")
                inbox.sync()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=store)
    t.start()
    while t.is_alive():
        assert [(m.uid, m.flags, m.modseq) for m in listing] == expected
    t.join()
    assert not errors
    assert all("\\Answered" in m.flags for m in inbox.messages())


def test_views_of_one_folder_share_the_decoded_snapshot(account: MaildirAccount) -> None:
    box = account.open("INBOX")
    uids = [box.append(msg(i)) for i in range(4)]
    box.sync()
    box.close()
    a, b = account.open("INBOX"), account.open("INBOX")
    assert a.messages().uids is b.messages().uids  # one decoded copy in the process
    listing_b = b.messages()
    a.store_flags([uids[0]], ["\\Seen"], "add")
    a.expunge()
    assert listing_b[0].flags == frozenset() and len(listing_b) == 4
    assert b.messages()[0].flags == frozenset()  # b has not synced yet
    b.sync()
    assert b.messages()[0].flags == {"\\Seen"}
    c = account.open("INBOX")
    assert c.messages()[0].flags == {"\\Seen"}
