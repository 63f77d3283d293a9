"""The metadata-only SEARCH path (one reused context, run on the reactor for
small mailboxes) answers exactly as matching each message with its own
:class:`MessageContext` does."""

from __future__ import annotations

import datetime

import pytest

from mailsuite.imap.commands import search
from mailsuite.imap.searchmatch import MessageContext, matches, parse_search_program
from mailsuite.imap.selected import SelectedView
from mailsuite.interfaces import MessageInfo

_T0 = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=datetime.UTC)
FLAGS = [
    frozenset(),
    frozenset({"\\Seen"}),
    frozenset({"\\Seen", "\\Flagged"}),
    frozenset({"\\Deleted", "$Label"}),
    frozenset({"\\Answered", "\\Seen"}),
]
MESSAGES = [
    MessageInfo(uid, FLAGS[uid % 5], 100 * uid, _T0 + datetime.timedelta(days=uid), uid + 40)
    for uid in range(1, 40, 2)
]


@pytest.mark.parametrize(
    "keys",
    [
        ["UNSEEN"],
        ["SEEN", "FLAGGED"],
        ["NOT", "DELETED"],
        ["OR", "ANSWERED", "KEYWORD", "$label"],
        ["RECENT"],
        ["NEW"],
        ["LARGER", "1500"],
        ["SINCE", "10-Mar-2024", "UNSEEN"],
        ["MODSEQ", "60"],
        ["2:5,9:*"],
        ["UID", "7:21"],
        ["ALL"],
    ],
)
def test_meta_path_matches_per_message_contexts(keys: list[str]) -> None:
    view = SelectedView("INBOX", None, False, MESSAGES, recent=[35, 37, 39])
    _charset, tree = parse_search_program(keys, now=0.0)
    batch = list(enumerate(view.uids, 1))
    maxima = (view.exists, view.uids[-1])
    got = search._match_batch(None, batch, tree, maxima, view)
    expected = []
    for seq, uid in batch:
        info = view.info[uid]
        ctx = MessageContext(
            uid=uid,
            seq=seq,
            flags=view.flags(uid),
            size=info.size,
            internaldate=info.internaldate,
            max_seq=maxima[0],
            max_uid=maxima[1],
            modseq=info.modseq,
        )
        if matches(tree, ctx):
            expected.append((seq, uid))
    assert got == expected
