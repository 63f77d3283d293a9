"""SASL PLAIN and LOGIN (RFC 4616, draft-murchison-sasl-login) and response coding."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsuite.errors import ErrorKind, MailError
from mailsuite.users import sasl


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_plain_with_initial_response() -> None:
    mech = sasl.start("plain")
    assert mech.step(b"\0alice@example.test\0s3cr\xc3\xa9t") == sasl.Credentials(
        "alice@example.test", "s3crét"
    )
    with pytest.raises(MailError):
        mech.step(b"\0a\0b")


def test_plain_without_initial_response() -> None:
    mech = sasl.start("PLAIN")
    assert mech.step(None) == sasl.Challenge(b"")
    assert mech.step(b"Alice@example.test\0alice@example.test\0pw") == sasl.Credentials(
        "alice@example.test", "pw"
    )


@pytest.mark.parametrize(
    "message",
    [b"", b"\0\0", b"a\0b", b"\0user\0", b"\0\0pw", b"a\0b\0c\0d", b"\0\xff\0pw", b"\0u\0p\xc3"],
)
def test_plain_malformed(message: bytes) -> None:
    with pytest.raises(MailError) as e:
        sasl.start("PLAIN").step(message)
    assert e.value.kind is ErrorKind.BAD_INPUT


def test_plain_other_authzid_is_refused() -> None:
    with pytest.raises(MailError) as e:
        sasl.start("PLAIN").step(b"admin@example.test\0alice@example.test\0pw")
    assert e.value.kind is ErrorKind.AUTH_FAILED


def test_login_exchange() -> None:
    mech = sasl.start("LOGIN")
    assert mech.step(None) == sasl.Challenge(b"Username:")
    assert mech.step(b"alice@example.test") == sasl.Challenge(b"Password:")
    assert mech.step(b"pw") == sasl.Credentials("alice@example.test", "pw")
    with pytest.raises(MailError):
        mech.step(b"more")


def test_login_with_initial_response() -> None:
    mech = sasl.start("login")
    assert mech.step(b"alice@example.test") == sasl.Challenge(b"Password:")
    assert mech.step(b"pw") == sasl.Credentials("alice@example.test", "pw")


@pytest.mark.parametrize("steps", [[b""], [b"u", b""], [b"u\0x"], [b"u", b"\xff"], [b"u", None]])
def test_login_malformed(steps: list[bytes | None]) -> None:
    mech = sasl.start("LOGIN")
    with pytest.raises(MailError) as e:
        for s in steps:
            mech.step(s)
    assert e.value.kind is ErrorKind.BAD_INPUT


@pytest.mark.parametrize("name", ["CRAM-MD5", "DIGEST-MD5", "XOAUTH2", "", "PLAIN "])
def test_unknown_mechanisms(name: str) -> None:
    with pytest.raises(MailError) as e:
        sasl.start(name)
    assert e.value.kind is ErrorKind.BAD_INPUT
    assert "CRAM-MD5" not in sasl.MECHANISMS


def test_decode_response() -> None:
    assert sasl.decode_response(b64(b"\0u\0p")) == b"\0u\0p"
    assert sasl.decode_response(b"=") == b""
    assert sasl.decode_response(b"") == b""
    with pytest.raises(sasl.Cancelled):
        sasl.decode_response(b"*")


@pytest.mark.parametrize(
    "line",
    [b"abc", b"ab c", b"YQ", b"YR==", b"YQ==\r\n", b"Y*==", b"====", b"YQ==YQ==", b"A" * 20000],
)
def test_decode_rejects_non_canonical_base64(line: bytes) -> None:
    with pytest.raises(MailError) as e:
        sasl.decode_response(line)
    assert e.value.kind is ErrorKind.BAD_INPUT


def test_encode_challenge() -> None:
    assert sasl.encode_challenge(b"") == b""
    assert sasl.encode_challenge(b"Username:") == b"VXNlcm5hbWU6"


@given(st.binary(max_size=300))
def test_decode_roundtrip_and_never_crashes(data: bytes) -> None:
    assert sasl.decode_response(base64.b64encode(data)) == data
    try:
        sasl.decode_response(data)
    except (MailError, sasl.Cancelled):
        pass


@given(st.binary(max_size=200))
def test_mechanisms_never_crash_on_garbage(data: bytes) -> None:
    for name in sasl.MECHANISMS:
        mech = sasl.start(name)
        try:
            mech.step(data)
            mech.step(data)
        except MailError:
            pass
