"""Password hashing and the migration schemes.

Every legacy hash is made here from the scheme's definition (hashlib or
passlib), never copied from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import os

import bcrypt as bcrypt_lib
import pytest
from passlib.hash import argon2, bcrypt, md5_crypt, sha256_crypt, sha512_crypt

from mailsuite.config import AuthConfig
from mailsuite.users.passwords import Argon2Params, PasswordHasher, split_dovecot

PW = "correct horse ✓ battery"


def ssha(digest: str, password: str, salt: bytes, encoding: str = "b64") -> str:
    raw = hashlib.new(digest, password.encode() + salt).digest() + salt
    return base64.b64encode(raw).decode() if encoding == "b64" else raw.hex()


def dovecot_pbkdf2(password: str, salt: str, rounds: int) -> str:
    key = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), rounds, 20)
    return f"{{PBKDF2}}$1${salt}${rounds}${key.hex()}"


def legacy_hashes(password: str) -> dict[str, str]:
    salt = os.urandom(8)
    cheap_argon = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
    return {
        "bcrypt": bcrypt.using(rounds=4).hash(password),
        "sha512_crypt": sha512_crypt.using(rounds=1000).hash(password),
        "sha256_crypt": sha256_crypt.using(rounds=1000).hash(password),
        "argon2i": argon2.using(type="I", **cheap_argon).hash(password),
        "SHA512-CRYPT": "{SHA512-CRYPT}" + sha512_crypt.using(rounds=5000).hash(password),
        "SHA256-CRYPT": "{SHA256-CRYPT}" + sha256_crypt.using(rounds=5000).hash(password),
        "MD5-CRYPT": "{MD5-CRYPT}" + md5_crypt.hash(password),
        "md5_crypt": md5_crypt.hash(password),
        "BLF-CRYPT": "{BLF-CRYPT}"
        + bcrypt_lib.hashpw(password.encode(), bcrypt_lib.gensalt(4, b"2a"))
        .decode()
        .replace("$2a$", "$2y$"),
        "ARGON2ID": "{ARGON2ID}" + argon2.using(type="ID", **cheap_argon).hash(password),
        "ARGON2I": "{ARGON2I}" + argon2.using(type="I", **cheap_argon).hash(password),
        "SSHA512": "{SSHA512}" + ssha("sha512", password, salt),
        "SSHA256": "{SSHA256}" + ssha("sha256", password, salt),
        "SSHA": "{SSHA}" + ssha("sha1", password, salt),
        "SSHA512.hex": "{SSHA512.HEX}" + ssha("sha512", password, salt, "hex"),
        "SHA256": "{SHA256}"
        + base64.b64encode(hashlib.sha256(password.encode()).digest()).decode(),
        "PBKDF2": dovecot_pbkdf2(password, "Zx9.ab/cdEF12345", 1000),
        "PLAIN": "{PLAIN}" + password,
        "CLEAR": "{CLEAR}" + password,
        "CLEARTEXT": "{cleartext}" + password,
        "PLAIN.b64": "{PLAIN.b64}" + base64.b64encode(password.encode()).decode(),
    }


@pytest.mark.parametrize("scheme", sorted(legacy_hashes("x")))
def test_legacy_schemes_verify_and_need_rehash(hasher: PasswordHasher, scheme: str) -> None:
    stored = legacy_hashes(PW)[scheme]
    assert hasher.verify(PW, stored)
    assert not hasher.verify(PW + "x", stored)
    assert not hasher.verify("", stored)
    assert hasher.needs_rehash(stored)
    assert hasher.identify(stored) is not None


def test_new_hash_is_argon2id_and_current(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PW)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(PW, stored)
    assert not hasher.verify("nope", stored)
    assert not hasher.needs_rehash(stored)
    assert hasher.identify(stored) == "argon2id"


def test_default_parameters_are_argon2id_rfc9106() -> None:
    params = Argon2Params.from_config(AuthConfig())
    assert params == Argon2Params(time_cost=3, memory_cost=65536, parallelism=4)
    default = PasswordHasher.from_config(AuthConfig())
    # Hash with the defaults once (about 0.1 s) to prove the type really is argon2id.
    stored = default.hash("pw")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert not default.needs_rehash(stored)


def test_other_argon2_parameters_need_rehash(hasher: PasswordHasher) -> None:
    stronger = argon2.using(type="ID", time_cost=2, memory_cost=8, parallelism=1).hash(PW)
    assert hasher.verify(PW, stored := stronger)
    assert hasher.needs_rehash(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "{UNKNOWN}abc",
        "{SSHA512}not base64!",
        "{SSHA}" + base64.b64encode(b"short").decode(),
        "{PBKDF2}$1$salt$notanumber$" + "00" * 20,
        "{PBKDF2}$1$salt$1000$" + "zz" * 20,
        "{PBKDF2}$2$salt$1000$" + "00" * 20,
        "{PBKDF2}$1$salt$0$" + "00" * 20,
        "{SHA512-CRYPT}not-a-crypt",
        "{PLAIN.rot13}x",
        "{CRYPT}abJnggxhB/yWI",  # DES crypt: not supported
        "$argon2id$broken",
        "$6$rounds=1000$broken",
    ],
)
def test_malformed_hashes_fail_quietly(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.verify("x", stored) is False
    assert hasher.needs_rehash(stored)


def test_bcrypt_reads_only_72_bytes(hasher: PasswordHasher) -> None:
    long = "a" * 100
    stored = "{BLF-CRYPT}" + bcrypt_lib.hashpw(long.encode()[:72], bcrypt_lib.gensalt(4)).decode()
    assert hasher.verify(long, stored)


def test_dummy_hash_is_current_argon2id_and_stable(hasher: PasswordHasher) -> None:
    dummy = hasher.dummy_hash
    assert dummy.startswith("$argon2id$")
    assert hasher.dummy_hash == dummy
    assert not hasher.needs_rehash(dummy)


def test_identify_refuses_what_cannot_be_verified(hasher: PasswordHasher) -> None:
    assert hasher.identify("{CRYPT}abJnggxhB/yWI") is None  # DES crypt
    assert hasher.identify("{NTLM}abc") is None
    assert hasher.identify("{CRYPT}" + sha512_crypt.hash("x")) == "dovecot:CRYPT"
    assert hasher.identify(md5_crypt.hash("x")) == "md5_crypt"


def test_split_dovecot() -> None:
    assert split_dovecot("{ssha512.b64}abc") == ("SSHA512", "b64", "abc")
    assert split_dovecot("{PLAIN}}x") == ("PLAIN", "", "}x")
    assert split_dovecot("$6$x") is None
    assert split_dovecot("{}x") is None
    assert split_dovecot("{PLAIN.zip}x") is None
