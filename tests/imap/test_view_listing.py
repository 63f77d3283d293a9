"""The selected view keeps the storage listing instead of one object per
message (imap/viewinfo.py): SELECT's FLAGS/UNSEEN, and merges of other
sessions' flag changes, expunges and deliveries stay exact."""

from __future__ import annotations

from pathlib import Path

from mailsuite.imap.selected import SelectedView
from mailsuite.interfaces import MessageInfo
from tests.imap.support import Client, add_user, claim_recent, deliver, make_context, message


def _info(uid: int, *flags: str, modseq: int = 1) -> MessageInfo:
    import datetime

    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return MessageInfo(uid, frozenset(flags), 10, when, modseq)


def test_select_reports_keywords_in_use_and_first_unseen(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    deliver(ctx, message(1), flags=("\\Seen",))
    deliver(ctx, message(2), flags=("\\Seen", "$Work"))
    deliver(ctx, message(3))
    c = Client(ctx)
    c.login()
    out = c.ok("SELECT INBOX")
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)" in out
    assert b"[UNSEEN 3]" in out
    c.ok("STORE 2 -FLAGS ($Work)")
    d = Client(ctx)
    d.login()
    out = d.ok("EXAMINE INBOX")
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n" in out
    assert b"[UNSEEN 3]" in out


def test_views_follow_other_sessions(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    for i in range(1, 6):
        deliver(ctx, message(i))
    claim_recent(ctx)
    a, b = Client(ctx), Client(ctx)
    a.login()
    b.login()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS (\\Flagged)")
    b.ok("STORE 4 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    deliver(ctx, message(6))
    out = a.ok("FETCH 1:* (UID FLAGS)")
    # answered from the view, then the sync's updates (no EXPUNGE during FETCH)
    assert b"* 4 FETCH (UID 4 FLAGS ())" in out
    tail = out.split(b"* 5 FETCH (UID 5 FLAGS ())\r\n")[1]
    assert tail.startswith(b"* 6 EXISTS\r\n* 1 RECENT\r\n* 2 FETCH (UID 2 FLAGS (\\Flagged))")
    assert b"EXPUNGE" not in out
    out = a.ok("NOOP")
    assert b"* 4 EXPUNGE" in out
    out = a.ok("FETCH 1:* (UID FLAGS)")
    assert out.count(b" FETCH (") == 5
    assert b"* 5 FETCH (UID 6 FLAGS (\\Recent))" in out
    assert b"* 2 FETCH (UID 2 FLAGS (\\Flagged))" in out


def test_apply_with_a_hint_compares_only_hinted_uids() -> None:
    view = SelectedView("INBOX", None, False, [_info(1), _info(2), _info(3)])
    view.apply([_info(1), _info(2, "\\Seen", modseq=2), _info(4)], changed=[2])
    assert view.pending_flags == {2}
    assert view.pending_expunge == {3}
    assert view.uids == [1, 2, 3, 4]
    assert view.flags(3) == frozenset()  # known until the EXPUNGE is sent
    lines = view.updates(True)
    assert b"* 3 EXPUNGE" in lines and b"* 2 FETCH (UID 2 FLAGS (\\Seen))" in lines
    assert view.uids == [1, 2, 4] and 3 not in view.info and not view.live(3)
    assert view.info[4].uid == 4


def test_own_flags_survive_until_the_next_listing() -> None:
    view = SelectedView("INBOX", None, False, [_info(1), _info(2)])
    view.note_flags({1: frozenset({"\\Answered"})})
    assert view.flags(1) == {"\\Answered"} and not view.pending_flags
    view.apply([_info(1, "\\Answered", modseq=2), _info(2)], changed=[])
    assert view.flags(1) == {"\\Answered"} and not view.pending_flags
