"""Address normalisation: IDNA domains, local parts, subaddresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsuite.errors import ErrorKind, MailError
from mailsuite.users import addresses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("alice@example.com.", "alice@example.com"),
        ("Jörg@Bücher.example", "jörg@xn--bcher-kva.example"),
        ('"alice"@example.com', "alice@example.com"),
        ('"a\\lice"@example.com', "alice@example.com"),
        ("a.b+tag@example.com", "a.b+tag@example.com"),
        ("x@XN--BCHER-KVA.example", "x@xn--bcher-kva.example"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert addresses.normalise(raw) == expected


def test_case_sensitive_keeps_localpart() -> None:
    assert addresses.normalise("Alice@Example.COM", case_sensitive=True) == "Alice@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "@example.com",
        "alice@",
        "alice",
        "a b@example.com",
        '"a b"@example.com',
        '"unterminated@example.com',
        "a..b@example.com",
        "a.@example.com",
        "alice@[192.0.2.1]",
        "alice@exa mple.com",
        "alice@-example.com",
        "alice@example..com",
        "alice@123",
        "x" * 65 + "@example.com",
        "alice@" + "a" * 64 + ".com",
        "alice@" + ".".join(["abcdefghi"] * 30),
        "al\x00ice@example.com",
        "alice@exa\u200dmple.com",
    ],
)
def test_invalid(raw: str) -> None:
    with pytest.raises(MailError) as e:
        addresses.normalise(raw)
    assert e.value.kind is ErrorKind.BAD_ADDRESS


def test_alias_sources_and_subaddresses() -> None:
    assert addresses.normalise_alias_source("@Example.COM") == "@example.com"
    assert addresses.normalise_alias_source("Info@Example.COM") == "info@example.com"
    assert addresses.strip_subaddress("bob+tag+more", "+") == "bob"
    assert addresses.strip_subaddress("bob", "+") is None
    assert addresses.strip_subaddress("+tag", "+") is None
    assert addresses.strip_subaddress("bob+tag", "") is None
    assert addresses.strip_subaddress("bob-tag", "-") == "bob"


@given(st.text(max_size=120))
def test_normalise_raises_only_bad_address(text: str) -> None:
    try:
        result = addresses.normalise(text)
    except MailError as e:
        assert e.kind is ErrorKind.BAD_ADDRESS
    else:
        assert addresses.normalise(result) == result  # idempotent


@given(st.from_regex(r"[a-z0-9.\-]{1,30}@[a-zA-Z0-9\-.\u00e0-\u00ff]{1,40}", fullmatch=True))
def test_normalise_address_like_text(text: str) -> None:
    try:
        result = addresses.normalise(text)
    except MailError as e:
        assert e.kind is ErrorKind.BAD_ADDRESS
    else:
        assert result.rpartition("@")[2].isascii()  # domains are stored as A-labels
        assert addresses.normalise(result) == result
