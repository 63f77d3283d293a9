"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT), the RFC's examples."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsuite.imap import esearch, responses
from mailsuite.imap.parser import ParseError
from tests.imap.support import USER, Client, add_user, fill, make_context


def mail(sender: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: b@example.test\r\nSubject: note {n}\r\n"
        "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nBody\r\n"
    ).encode()


def rfc_mailbox(tmp_path: Path) -> Client:
    """11 messages; FLAGGED 2, 5, 7, 10, 11; message 5 arrived in 1993,
    message 7 is from Smith; messages 1-3 are \\Seen."""
    ctx = make_context(tmp_path)
    add_user(ctx)
    account = ctx.store.account(USER)
    account.ensure_created()
    box = account.open("INBOX")
    old = datetime.datetime(1993, 12, 24, 12, 0, tzinfo=datetime.UTC)
    for n in range(1, 12):
        flags = []
        if n in (2, 5, 7, 10, 11):
            flags.append("\\Flagged")
        if n <= 3:
            flags.append("\\Seen")
        sender = "John Smith <smith@example.test>" if n == 7 else "ann@example.test"
        box.append(io.BytesIO(mail(sender, n)), flags, old if n == 5 else None)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    return c


def esearch_line(out: bytes) -> bytes:
    lines = [x for x in out.split(b"\r\n") if x.startswith(b"* ESEARCH")]
    assert len(lines) == 1, out
    assert b"* SEARCH" not in out
    return lines[0]


def test_capability(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    assert b" ESEARCH" in c.ok("CAPABILITY")


def test_rfc_example_min_count(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.raw(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert out == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\nA282 OK SEARCH completed\r\n'


def test_rfc_example_empty_return_is_all(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.raw(b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert out == b'* ESEARCH (TAG "A283") ALL 2,10:11\r\nA283 OK SEARCH completed\r\n'


def test_rfc_example_first_unseen(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.raw(b"A284 SEARCH RETURN (MIN) UNSEEN\r\n")
    assert out == b'* ESEARCH (TAG "A284") MIN 4\r\nA284 OK SEARCH completed\r\n'


def test_rfc_example_uid_min_max(tmp_path: Path) -> None:
    # UIDs 7..3800 exist: 3810 delivered, 1:6 and 3801:3810 expunged
    ctx = make_context(tmp_path)
    add_user(ctx)
    fill(ctx, 3810)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    c.ok("UID STORE 1:6,3801:3810 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    out = c.raw(b"A285 UID SEARCH RETURN (MIN MAX) 1:5000\r\n")
    assert out == b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\nA285 OK SEARCH completed\r\n'
    out = c.ok("UID SEARCH RETURN (ALL COUNT) 1:5000")
    assert esearch_line(out).endswith(b" UID ALL 7:3800 COUNT 3794")
    out = c.ok("SEARCH RETURN (ALL) 1:5000")  # message numbers, not UIDs
    assert esearch_line(out).endswith(b") ALL 1:3794")


def test_rfc_example_count_deleted(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    fill(ctx, 20)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    c.ok("STORE 2:16 +FLAGS.SILENT (\\Deleted)")
    out = c.raw(b"A286 SEARCH RETURN (COUNT) DELETED\r\n")
    assert out == b'* ESEARCH (TAG "A286") COUNT 15\r\nA286 OK SEARCH completed\r\n'


def test_no_match_still_answers(tmp_path: Path) -> None:
    # RFC 4731 §3.1: MIN/MAX/ALL are left out, the ESEARCH response is still sent
    c = rfc_mailbox(tmp_path)
    out = c.ok("SEARCH RETURN (MIN MAX ALL COUNT) DRAFT")
    assert esearch_line(out) == b'* ESEARCH (TAG "t3") COUNT 0'
    out = c.ok("UID SEARCH RETURN (MIN) DRAFT")
    assert esearch_line(out) == b'* ESEARCH (TAG "t4") UID'


def test_all_options_in_one_response(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.ok("SEARCH RETURN (count all MAX min) FLAGGED")
    assert esearch_line(out) == b'* ESEARCH (TAG "t3") MIN 2 MAX 11 ALL 2,5,7,10:11 COUNT 5'


def test_return_before_charset(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.ok('SEARCH RETURN (COUNT) CHARSET UTF-8 FROM "smith"')
    assert esearch_line(out) == b'* ESEARCH (TAG "t3") COUNT 1'


def test_plain_search_unchanged(tmp_path: Path) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.ok("SEARCH FLAGGED")
    assert b"* SEARCH 2 5 7 10 11\r\n" in out and b"ESEARCH" not in out


@pytest.mark.parametrize(
    "args",
    [
        "RETURN (FOO) ALL",
        "RETURN ALL",
        "RETURN",
        "RETURN (MIN)",
        'RETURN ("MIN") ALL',
        "ALL RETURN (MIN)",
    ],
)
def test_bad_return_options(tmp_path: Path, args: str) -> None:
    c = rfc_mailbox(tmp_path)
    out = c.cmd("SEARCH " + args)
    assert c.tagged(out).startswith(b"t3 BAD"), out


@given(st.sets(st.integers(1, 200)))
def test_sequence_set_round_trip(numbers: set[int]) -> None:
    text = responses.sequence_set(numbers)
    back: set[int] = set()
    for part in text.split(",") if text else []:
        lo, _, hi = part.partition(":")
        back.update(range(int(lo), int(hi or lo) + 1))
    assert back == numbers
    # as compact as possible: no two ranges could be merged
    assert text.count(",") + 1 == (
        sum(1 for n in numbers if n - 1 not in numbers) if numbers else 1
    )


def test_split_return_unit() -> None:
    assert esearch.split_return(["ALL"]) == (None, ["ALL"])
    assert esearch.split_return(["return", [], "ALL"]) == (frozenset({"ALL"}), ["ALL"])
    with pytest.raises(ParseError):
        esearch.split_return(["RETURN", [b"MIN"], "ALL"])
