"""``import-dovecot-passwd``: migration from every Dovecot scheme, then login and rehash.

The hashes are made here with each scheme's definition (hashlib / passlib).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import bcrypt as bcrypt_lib
import pytest
from passlib.hash import argon2, sha256_crypt, sha512_crypt
from twisted.internet import task
from twisted.python.failure import Failure

from mailsuite.admin import exits
from mailsuite.config import AuthConfig
from mailsuite.errors import ErrorKind
from mailsuite.interfaces import UserRecord
from mailsuite.threads import InlineRunner
from mailsuite.users.auth import DirectoryAuthenticator
from mailsuite.users.passwords import PasswordHasher

from .conftest import Admin

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def _salted(digest: str, pw: str) -> str:
    salt = os.urandom(6)
    return base64.b64encode(hashlib.new(digest, pw.encode() + salt).digest() + salt).decode()


SCHEMES = {
    "SHA512-CRYPT": lambda pw: "{SHA512-CRYPT}" + sha512_crypt.using(rounds=5000).hash(pw),
    "SHA256-CRYPT": lambda pw: "{SHA256-CRYPT}" + sha256_crypt.using(rounds=5000).hash(pw),
    "BLF-CRYPT": lambda pw: (
        "{BLF-CRYPT}"
        + bcrypt_lib.hashpw(pw.encode(), bcrypt_lib.gensalt(4)).decode().replace("$2b$", "$2y$")
    ),
    "ARGON2ID": lambda pw: "{ARGON2ID}" + argon2.using(type="ID", **CHEAP).hash(pw),
    "ARGON2I": lambda pw: "{ARGON2I}" + argon2.using(type="I", **CHEAP).hash(pw),
    "SSHA512": lambda pw: "{SSHA512}" + _salted("sha512", pw),
    "SSHA256": lambda pw: "{SSHA256}" + _salted("sha256", pw),
    "SSHA": lambda pw: "{SSHA}" + _salted("sha1", pw),
    "PBKDF2": lambda pw: (
        "{PBKDF2}$1$QmFkU2FsdA..$5000$"
        + hashlib.pbkdf2_hmac("sha1", pw.encode(), b"QmFkU2FsdA..", 5000, 20).hex()
    ),
    "PLAIN": lambda pw: "{PLAIN}" + pw,
    "CLEAR": lambda pw: "{CLEAR}" + pw,
    "bare-crypt": lambda pw: sha512_crypt.using(rounds=5000).hash(pw),
}


def write_passwd(path: Path, entries: list[tuple[str, str]], extra: str = "") -> None:
    lines = ["# Dovecot passwd-file", ""]
    lines += [
        f"{user}:{stored}:5000:5000::/home/vmail::userdb_quota_rule=*:storage=1G"
        for user, stored in entries
    ]
    path.write_text("\n".join(lines) + "\n" + extra)


def login(admin: Admin, user: str, pw: str, peer: str = "192.0.2.1") -> Any:
    config = AuthConfig(argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1)
    clock = task.Clock()
    auth = DirectoryAuthenticator(admin.directory(), InlineRunner(), clock, config)
    results: list[Any] = []
    auth.login(user, pw, peer, "imap").addBoth(results.append)
    clock.advance(60)
    return results[0]


def test_import_every_scheme_then_login_rehashes(admin: Admin, tmp_path: Path) -> None:
    entries = [
        (f"{name.lower()}@example.test", make(f"pw-{name}")) for name, make in SCHEMES.items()
    ]
    passwd = tmp_path / "passwd"
    write_passwd(passwd, entries)
    out = admin.ok("import-dovecot-passwd", str(passwd), "--create-domains")
    assert out == f"imported: {len(SCHEMES)} added, 0 updated, 0 skipped\n"
    hasher = PasswordHasher()
    for name in SCHEMES:
        user = f"{name.lower()}@example.test"
        before = admin.directory().get_password_hash(user)
        assert before == dict(entries)[user]
        failed = login(admin, user, "wrong")
        assert isinstance(failed, Failure) and failed.value.kind is ErrorKind.AUTH_FAILED
        assert admin.directory().get_password_hash(user) == before  # no rehash on failure
        assert login(admin, user.upper(), f"pw-{name}", peer="192.0.2.2") == UserRecord(user)
        after = admin.directory().get_password_hash(user)
        assert after is not None and after.startswith("$argon2id$v=19$m=8,t=1,p=1$"), name
        assert hasher.verify(f"pw-{name}", after)


def test_bad_lines_are_reported_and_the_rest_imported(
    admin: Admin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin.ok("domain", "add", "example.test")
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "good@example.test:{PLAIN}pw\n"
        "nodomain:{PLAIN}pw\n"
        "bad address@example.test:{PLAIN}pw\n"
        "empty@example.test:\n"
        "weird@example.test:{NTLM}abcdef\n"
        "des@example.test:abJnggxhB/yWI\n"
        "other@elsewhere.test:{PLAIN}pw\n"
        "justtext\n"
        "good@example.test:{PLAIN}again\n"
    )
    r = admin("import-dovecot-passwd", str(passwd))
    assert r.code == exits.DATAERR
    assert r.out == "imported: 1 added, 0 updated, 8 skipped\n"
    errors = r.err.splitlines()
    assert [e.split(":")[1] for e in errors] == ["2", "3", "4", "5", "6", "7", "8", "9"]
    assert "--domain" in errors[0] and "--create-domains" in errors[5] and "--update" in errors[7]
    assert admin.directory().get_user("good@example.test") is not None


def test_default_domain_update_and_dry_run(admin: Admin, tmp_path: Path) -> None:
    admin.ok("domain", "add", "example.test")
    passwd = tmp_path / "passwd"
    passwd.write_text("bob:{PLAIN}one\n")
    assert admin.ok(
        "import-dovecot-passwd", str(passwd), "--domain", "example.test", "--dry-run"
    ) == ("would import: 1 added, 0 updated, 0 skipped\n")
    assert admin.directory().get_user("bob@example.test") is None
    admin.ok("import-dovecot-passwd", str(passwd), "--domain", "example.test")
    passwd.write_text("bob@example.test:{PLAIN}two\n")
    out = admin.ok("import-dovecot-passwd", str(passwd), "--update")
    assert out == "imported: 0 added, 1 updated, 0 skipped\n"
    assert admin.directory().get_password_hash("bob@example.test") == "{PLAIN}two"


def test_missing_file(admin: Admin, tmp_path: Path) -> None:
    r = admin("import-dovecot-passwd", str(tmp_path / "nope"))
    assert r.code == exits.NOINPUT and "file not found" in r.err
