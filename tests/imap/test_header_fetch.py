"""Top-level header fetches and header SEARCH read only the header bytes
(``header_bytes``) and no MIME structure: the answers must be the bytes the
whole-message path gives, on a real Maildir."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest

from mailsuite.imap import content
from mailsuite.imap.commands import fetch, search
from mailsuite.imap.fetchatts import FetchAtt
from mailsuite.imap.searchmatch import MessageContext, matches, parse_search_program
from mailsuite.storage.mailbox import MaildirMailbox
from mailsuite.storage.store import MaildirStore

MESSAGES = [
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: hello\r\n"
    b"Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nbody\r\n",
    b"Subject: folded\r\n  over two lines\r\nFrom: x@example.org\r\n",  # no blank line
    b"\r\nno header at all\r\n",
    b"From: nul\x00@example.org\r\nX-Other: 1\r\nsubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
    b"From: not a header\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\nFrom: m@example.org\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
]

ATTS = [
    FetchAtt("BODY", "HEADER", (), "HEADER", (), None, True),
    FetchAtt("BODY", "HEADER.FIELDS (FROM SUBJECT)", (), "HEADER.FIELDS", ("FROM", "SUBJECT")),
    FetchAtt("BODY", "HEADER.FIELDS.NOT (FROM)", (), "HEADER.FIELDS.NOT", ("FROM",), (2, 9)),
    FetchAtt("RFC822.HEADER"),
]


@pytest.fixture
def box(tmp_path: Path) -> MaildirMailbox:
    mailbox = MaildirStore(tmp_path / "mail").account("bob@example.org").open("INBOX")
    for raw in MESSAGES:
        mailbox.append(io.BytesIO(raw))
    mailbox.sync()
    return mailbox


def test_header_only_items() -> None:
    assert all(content.header_only([FetchAtt("UID"), a]) for a in ATTS)
    assert not content.header_only([FetchAtt("UID")])
    assert not content.header_only([ATTS[0], FetchAtt("BODY", "TEXT", (), "TEXT")])
    assert not content.header_only([FetchAtt("BODY", "1.HEADER", (1,), "HEADER")])
    assert not content.header_only([FetchAtt("ENVELOPE")])


def test_header_bytes_are_the_root_header(box: MaildirMailbox) -> None:
    for info in box.messages():
        part = box.structure(info.uid)
        with box.open_message(info.uid) as f:
            raw = f.read()
        assert box.header_bytes(info.uid) == raw[: part.body_start]


def test_header_fetch_same_bytes_as_whole_message(box: MaildirMailbox) -> None:
    msgs = list(box.messages())
    items = [(i + 1, m.uid, m.flags, m) for i, m in enumerate(msgs)]
    for att in ATTS:
        data, _changed, gone, failed = fetch._render_batch(
            box, items, [FetchAtt("UID"), att], False
        )
        assert not gone and failed is None
        expected = []
        for seq, uid, flags, info in items:
            with box.open_message(uid) as f:
                raw = f.read()
            value = content.render_item(
                att,
                uid=uid,
                flags=flags,
                size=info.size,
                internaldate=info.internaldate,
                raw=raw,
                part=box.structure(uid),
            )
            expected.append(b"* %d FETCH (UID %d " % (seq, uid) + value + b")\r\n")
        assert data == b"".join(expected)


@pytest.mark.parametrize(
    "keys",
    [
        ["FROM", "ann"],
        ["SUBJECT", "over two"],
        ["SUBJECT", "café"],
        ["FROM", "nul"],
        ["TO", "bob"],
    ],
)
def test_header_search_same_as_whole_message(box: MaildirMailbox, keys: list[str]) -> None:
    _charset, tree = parse_search_program(keys, now=0.0)
    msgs = list(box.messages())

    class View:
        info = {m.uid: m for m in msgs}

        def flags(self, uid: int) -> frozenset[str]:
            return self.info[uid].flags

    got = search._match_batch(
        box, [(i + 1, m.uid) for i, m in enumerate(msgs)], tree, (9, 9), View()
    )
    expected = []
    for i, m in enumerate(msgs):
        with box.open_message(m.uid) as f:
            raw = f.read()
        ctx = MessageContext(
            uid=m.uid,
            seq=i + 1,
            flags=m.flags,
            size=m.size,
            internaldate=datetime.datetime.now(datetime.UTC),
            raw=raw,
            part=box.structure(m.uid),
        )
        if matches(tree, ctx):
            expected.append((i + 1, m.uid))
    assert got == expected
    assert got  # every key matches some message


def test_header_ends_one_query(box: MaildirMailbox) -> None:
    uids = [m.uid for m in box.messages()]
    first = box.header_ends([*uids, 999])  # only what the part cache knows
    assert set(first) <= set(uids)
    for uid in uids:
        box.structure(uid)  # fills the part cache
    ends = box.header_ends([*uids, 999])
    assert set(ends) == set(uids)
    for uid in uids:
        assert box.header_bytes(uid, ends[uid]) == box.header_bytes(uid)
        assert ends[uid] == box.structure(uid).body_start


class _View:
    def __init__(self, box: MaildirMailbox) -> None:
        self.info = {m.uid: m for m in box.messages()}

    def flags(self, uid: int) -> frozenset[str]:
        return self.info[uid].flags


def test_warm_header_cache_same_answers(tmp_path: Path, box: MaildirMailbox) -> None:
    """Second and later runs answer from the header cache's memo: the same
    bytes, also after another process renames, removes and adds messages."""
    _charset, tree = parse_search_program(["OR", "FROM", "ann", "SUBJECT", "café"], now=0.0)
    atts = [FetchAtt("UID"), ATTS[1], ATTS[2]]

    def answers() -> tuple[list[tuple[int, int]], bytes, list[int]]:
        msgs = list(box.messages())
        found = search._match_batch(
            box, [(i + 1, m.uid) for i, m in enumerate(msgs)], tree, (9, 9), _View(box)
        )
        items = [(i + 1, m.uid, m.flags, m) for i, m in enumerate(msgs)]
        data, _changed, gone, _failed = fetch._render_batch(box, items, atts, False)
        return found, data, gone

    cold = answers()
    assert cold == answers() and len(cold[0]) == 2
    other = MaildirStore(tmp_path / "mail").account("bob@example.org").open("INBOX")
    uids = [m.uid for m in other.messages()]
    other.store_flags([uids[0]], ["\\Flagged"], "add")
    other.store_flags([uids[3]], ["\\Deleted"], "add")
    other.expunge()
    other.append(io.BytesIO(b"From: Ann <ann@other.example>\r\n\r\nx\r\n"))
    box.sync()
    found, data, gone = answers()
    assert [uid for _, uid in found] == [uids[0], uids[-1] + 1]
    assert not gone
    assert data.count(b" FETCH (") == len(uids)
    assert b"ann@other.example" in data


def test_warm_text_search_same_answers(tmp_path: Path, box: MaildirMailbox) -> None:
    """TEXT and BODY keep their decoded texts in the header cache's memo:
    the same matches warm as cold, and after another process's changes."""
    _charset, tree = parse_search_program(["OR", "TEXT", "not a header", "BODY", "hi"], now=0.0)

    def found() -> list[int]:
        msgs = list(box.messages())
        batch = [(i + 1, m.uid) for i, m in enumerate(msgs)]
        return [uid for _, uid in search._match_batch(box, batch, tree, (9, 9), _View(box))]

    uids = [m.uid for m in box.messages()]
    assert found() == [uids[3], uids[4]]
    assert found() == [uids[3], uids[4]]  # warm
    other = MaildirStore(tmp_path / "mail").account("bob@example.org").open("INBOX")
    other.store_flags([uids[3]], ["\\Deleted"], "add")
    other.expunge()
    other.store_flags([uids[4]], ["\\Seen"], "add")
    new = other.append(io.BytesIO(b"Subject: x\r\n\r\nhi there\r\n"))
    box.sync()
    assert found() == [uids[4], new]
