"""Contract tests for interfaces.Mailbox, run against the real Maildir code.

``MailboxContract`` needs a ``mailbox`` fixture (an empty, freshly opened
folder) and a ``reopen`` fixture (a second view of the same folder); any
future store implementation can reuse it.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable
from typing import Any

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import MessageInfo
from mailsuite.storage.account import MaildirAccount
from tests.storage.conftest import msg


class MailboxContract:
    def test_empty(self, mailbox: Any) -> None:
        assert list(mailbox.messages()) == []
        assert mailbox.uidnext() >= 1
        assert mailbox.uidvalidity > 0
        assert mailbox.sync().added == []

    def test_append_then_sync_reports_added(self, mailbox: Any) -> None:
        uid1 = mailbox.append(msg(1), ["\\Seen"])
        uid2 = mailbox.append(msg(2))
        assert uid2 > uid1
        result = mailbox.sync()
        assert list(result.added) == [uid1, uid2]
        infos = list(mailbox.messages())
        assert [m.uid for m in infos] == [uid1, uid2]
        assert isinstance(infos[0], MessageInfo)
        assert infos[0].flags == frozenset({"\\Seen"})
        assert infos[1].flags == frozenset()
        assert mailbox.uidnext() > uid2
        assert mailbox.sync().added == []

    def test_size_is_crlf_size_and_bytes_roundtrip(self, mailbox: Any) -> None:
        raw = b"Subject: x\r\n\r\nline\r\n"
        uid = mailbox.append(io.BytesIO(raw))
        mailbox.sync()
        assert mailbox.messages()[0].size == len(raw)
        with mailbox.open_message(uid) as f:
            assert f.read() == raw

    def test_bare_lf_is_stored_as_crlf(self, mailbox: Any) -> None:
        uid = mailbox.append(io.BytesIO(b"Subject: x\n\nbody\n"))
        mailbox.sync()
        with mailbox.open_message(uid) as f:
            data = f.read()
        assert data == b"Subject: x\r\n\r\nbody\r\n"
        assert mailbox.messages()[0].size == len(data)

    def test_internaldate(self, mailbox: Any) -> None:
        when = datetime.datetime(2020, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
        mailbox.append(msg(), internaldate=when)
        mailbox.sync()
        got = mailbox.messages()[0].internaldate
        assert got.tzinfo is not None
        assert got == when

    def test_store_flags_modes(self, mailbox: Any) -> None:
        uid = mailbox.append(msg())
        mailbox.sync()
        assert mailbox.store_flags([uid], ["\\Seen", "\\Flagged"], "add") == {
            uid: frozenset({"\\Seen", "\\Flagged"})
        }
        assert mailbox.store_flags([uid], ["\\Flagged"], "remove") == {uid: frozenset({"\\Seen"})}
        assert mailbox.store_flags([uid], ["\\Draft", "$Label1"], "set") == {
            uid: frozenset({"\\Draft", "$Label1"})
        }
        assert mailbox.messages()[0].flags == frozenset({"\\Draft", "$Label1"})
        # Own changes are not reported again by sync.
        assert list(mailbox.sync().flags_changed) == []

    def test_store_flags_all_system_flags_and_forwarded(self, mailbox: Any) -> None:
        uid = mailbox.append(msg())
        mailbox.sync()
        flags = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded"}
        assert mailbox.store_flags([uid], list(flags), "set")[uid] == frozenset(flags)

    def test_store_flags_unknown_uid_ignored(self, mailbox: Any) -> None:
        assert mailbox.store_flags([999], ["\\Seen"], "add") == {}

    def test_invalid_flags_rejected(self, mailbox: Any) -> None:
        uid = mailbox.append(msg())
        mailbox.sync()
        for bad in ("\\Bogus", "with space", "paren(", ""):
            with pytest.raises(MailError) as exc:
                mailbox.store_flags([uid], [bad], "add")
            assert exc.value.kind is ErrorKind.BAD_INPUT
        with pytest.raises(MailError):
            mailbox.store_flags([uid], ["\\Seen"], "toggle")

    def test_keywords_case_insensitive(self, mailbox: Any) -> None:
        uid = mailbox.append(msg(), ["$Junk"])
        mailbox.sync()
        assert mailbox.store_flags([uid], ["$junk"], "remove")[uid] == frozenset()

    def test_expunge_only_deleted(self, mailbox: Any) -> None:
        uids = [mailbox.append(msg(i)) for i in range(4)]
        mailbox.sync()
        mailbox.store_flags(uids[1:3], ["\\Deleted"], "add")
        assert mailbox.expunge([uids[2], uids[3]]) == [uids[2]]
        assert mailbox.expunge() == [uids[1]]
        assert [m.uid for m in mailbox.messages()] == [uids[0], uids[3]]
        assert list(mailbox.sync().expunged) == []
        with pytest.raises(MailError) as exc:
            mailbox.open_message(uids[1])
        assert exc.value.kind is ErrorKind.EXPUNGED

    def test_uids_never_reused(self, mailbox: Any) -> None:
        uid = mailbox.append(msg())
        mailbox.sync()
        mailbox.store_flags([uid], ["\\Deleted"], "add")
        mailbox.expunge()
        uid2 = mailbox.append(msg())
        assert uid2 > uid

    def test_other_view_sees_changes(self, mailbox: Any, reopen: Callable[[], Any]) -> None:
        other = reopen()
        uid = mailbox.append(msg())
        mailbox.sync()
        assert other.changed_on_disk()
        assert list(other.sync().added) == [uid]
        mailbox.store_flags([uid], ["\\Answered"], "add")
        assert list(other.sync().flags_changed) == [uid]
        assert other.messages()[0].flags == frozenset({"\\Answered"})
        mailbox.store_flags([uid], ["\\Deleted"], "add")
        mailbox.expunge()
        result = other.sync()
        assert list(result.expunged) == [uid]
        assert list(other.messages()) == []

    def test_copy_to(self, mailbox: Any, reopen: Callable[[], Any], dest: Any) -> None:
        a = mailbox.append(msg(1), ["\\Seen", "$Work"])
        b = mailbox.append(msg(2))
        mailbox.sync()
        mapping = mailbox.copy_to([a, b, 999], dest)
        assert set(mapping) == {a, b}
        assert mapping[a] < mapping[b]
        assert list(dest.sync().added) == [mapping[a], mapping[b]]
        assert dest.messages()[0].flags == frozenset({"\\Seen", "$Work"})
        with dest.open_message(mapping[b]) as f, mailbox.open_message(b) as g:
            assert f.read() == g.read()

    def test_pop3_uidl_stable(self, mailbox: Any, reopen: Callable[[], Any]) -> None:
        uid = mailbox.append(msg())
        mailbox.sync()
        uidl = mailbox.pop3_uidl(uid)
        mailbox.store_flags([uid], ["\\Seen"], "add")
        other = reopen()
        assert other.pop3_uidl(uid) == uidl
        assert 0 < len(uidl) <= 70 and uidl.isascii() and " " not in uidl

    def test_uidvalidity_stable_across_views(
        self, mailbox: Any, reopen: Callable[[], Any]
    ) -> None:
        mailbox.append(msg())
        assert reopen().uidvalidity == mailbox.uidvalidity

    # ------------------------------------------------------------ CONDSTORE
    def test_modseq_contract(self, mailbox: Any, reopen: Callable[[], Any]) -> None:
        """RFC 7162 §3.1: positive modseqs, raised by every change, never lowered."""
        a = mailbox.append(msg(1))
        b = mailbox.append(msg(2))
        mailbox.sync()
        high = mailbox.highest_modseq()
        mods = {m.uid: m.modseq for m in mailbox.messages()}
        assert all(0 < m <= high < 2**63 for m in mods.values())
        done = mailbox.store_flags_conditional([a, b], ["\\Seen"], "add", mods[a])
        assert done.modified == ([b] if mods[b] > mods[a] else [])
        assert done.messages[a][1] > high
        assert mailbox.modseq(a) == done.messages[a][1] == mailbox.highest_modseq()
        assert mailbox.changed_since(high) == [a]
        other = reopen()
        assert other.modseq(a) == mailbox.modseq(a)
        mailbox.store_flags([a], ["\\Deleted"], "add")
        mark = mailbox.highest_modseq()
        assert mailbox.expunge() == [a]
        assert mailbox.expunged_since(mark) == ([a], True)
        assert other.sync().expunged == [a]
        assert other.highest_modseq() > mark


class TestMaildirMailbox(MailboxContract):
    @pytest.fixture
    def mailbox(self, account: MaildirAccount) -> Any:
        account.create_folder("Test")
        return account.open("Test")

    @pytest.fixture
    def reopen(self, account: MaildirAccount) -> Callable[[], Any]:
        return lambda: account.open("Test")

    @pytest.fixture
    def dest(self, account: MaildirAccount) -> Any:
        account.create_folder("Dest")
        return account.open("Dest")


class TestMaildirInbox(MailboxContract):
    @pytest.fixture
    def mailbox(self, account: MaildirAccount) -> Any:
        return account.open("INBOX")

    @pytest.fixture
    def reopen(self, account: MaildirAccount) -> Callable[[], Any]:
        return lambda: account.open("inbox")

    @pytest.fixture
    def dest(self, account: MaildirAccount) -> Any:
        return account.open("Archive")
