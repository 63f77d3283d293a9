"""Folder name validation (RFC 3501 §5.1.3 modified UTF-7, Maildir++ mapping)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.names import from_disk, mutf7_decode, mutf7_encode, normalize, to_disk

BAD = [
    "",
    "a\x00b",
    "a\x01b",
    "tab\there",
    "del\x7f",
    "a/../b",
    "..",
    "a/./b",
    "/leading",
    "trailing/",
    "a//b",
    "dot.inside",
    "star*",
    "per%cent",
    "caf\u00e9",  # raw non-ASCII: must be modified UTF-7
    "&AOk",  # unterminated shift
    "&AGE-",  # printable ASCII encoded
    "&AOl-",  # non-zero padding bits
    "&2D0-",  # lone surrogate
    "&AOk-&AOk-",  # adjacent shifted runs
    "&A/k-",  # '/' is not in the modified base64 alphabet
    "x" * 256,
    "a/" * 127 + "b",  # 255 bytes of name, on-disk form longer than 255
]


@pytest.mark.parametrize("name", BAD)
def test_rejects_bad_shapes(name: str) -> None:
    with pytest.raises(MailError) as exc:
        normalize(name)
    assert exc.value.kind is ErrorKind.BAD_NAME


@pytest.mark.parametrize(
    ("name", "canonical", "disk"),
    [
        ("INBOX", "INBOX", ""),
        ("inbox", "INBOX", ""),
        ("Inbox/Sub", "INBOX/Sub", ".INBOX.Sub"),
        ("Sent", "Sent", ".Sent"),
        ("a/b/c", "a/b/c", ".a.b.c"),
        ("caf&AOk-", "caf&AOk-", ".caf&AOk-"),
        ("&-amp", "&-amp", ".&-amp"),
        ("with space", "with space", ".with space"),
        ("&ZeVnLIqe-", "&ZeVnLIqe-", ".&ZeVnLIqe-"),
    ],
)
def test_accepts_and_maps(name: str, canonical: str, disk: str) -> None:
    assert normalize(name) == canonical
    assert to_disk(canonical) == disk
    if disk:
        assert from_disk(disk) == canonical


def test_from_disk_ignores_non_folders() -> None:
    assert from_disk("cur") is None
    assert from_disk("..mailsuite-trash-1") is None
    assert from_disk(".a..b") is None
    assert from_disk(".") is None


@given(st.text(min_size=1, max_size=40).filter(lambda s: all(c not in "/.*%" for c in s)))
def test_mutf7_roundtrip(text: str) -> None:
    encoded = mutf7_encode(text)
    assert mutf7_decode(encoded) == text
    if all(" " <= c <= "~" or ord(c) > 0x9F for c in text) and not any(
        0xD800 <= ord(c) <= 0xDFFF for c in text
    ):
        assert normalize(encoded) == (
            "INBOX" if encoded.upper() == "INBOX" else encoded
        ) or encoded.upper().startswith("INBOX")
