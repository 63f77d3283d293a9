"""Our FETCH answers against Dovecot 2.3.19's for the 49 test messages."""

from __future__ import annotations

import pytest

from mailsuite.imap.fetchrender import render_item
from mailsuite.mime.decode import BinaryError
from mailsuite.mime.structure import Part, parse_message
from tests.mime.mime_testdata import answers, hash_literals, message, parse_item, uids


def _answer_ok(ans: dict[str, str]) -> bool:
    return "error" not in ans and " OK " in ans["tagged"]


@pytest.mark.parametrize("uid", uids())
def test_fetch_items_match_dovecot(uid: int) -> None:
    data = answers()
    raw = message(uid)
    part = parse_message(raw)
    # the cached form must answer exactly like the fresh parse
    cached = Part.from_data(part.to_data())
    mismatches = []
    for text in data["items"]:
        ans = data["answers"][f"UID FETCH {uid} ({text})"]
        item = parse_item(text)
        for p in (part, cached):
            try:
                body = render_item(item, raw, p, uid=uid, size=len(raw)).decode("latin-1")
            except BinaryError as e:
                assert e.code == "UNKNOWN-CTE"
                if _answer_ok(ans):
                    mismatches.append((text, "NO", ans["untagged"][:200]))
                continue
            if not _answer_ok(ans):
                mismatches.append((text, body[:200], "NO"))
                continue
            got = hash_literals(f"* {uid} FETCH (UID {uid} {body})\r\n")
            if got != ans["untagged"]:
                mismatches.append((text, got[:300], ans["untagged"][:300]))
    assert not mismatches


def test_rfc822_size_matches_normalised_file() -> None:
    data = answers()
    for uid in uids():
        ans = data["answers"][f"UID FETCH {uid} (RFC822.SIZE)"]["untagged"]
        assert ans == f"* {uid} FETCH (UID {uid} RFC822.SIZE {len(message(uid))})\r\n"
