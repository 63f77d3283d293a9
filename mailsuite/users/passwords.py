"""Password hashing and verification.

New hashes are argon2id (RFC 9106) through libpass's ``passlib``
CryptContext, with configurable cost.  For migration, :meth:`verify` also
accepts what existing installations store:

* bare crypt strings: ``$argon2id$``/``$argon2i$``, bcrypt ``$2a$ $2b$ $2y$``,
  sha512-crypt ``$6$``, sha256-crypt ``$5$``, md5-crypt ``$1$`` (weak; for
  migration only);
* Dovecot ``{SCHEME}`` strings: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT,
  ARGON2ID, ARGON2I, SSHA512, SSHA256, SSHA, SHA512, SHA256, SHA/SHA1,
  PBKDF2 (``$1$salt$rounds$hexkey``: PBKDF2-HMAC-SHA1, the salt string used
  as is, a 20-byte key in hex), PLAIN/CLEAR/CLEARTEXT.  A ``.b64``/``.base64``
  or ``.hex`` suffix on the scheme name selects the encoding of the salted
  SHA and PLAIN schemes, as Dovecot allows.

Everything except argon2id with the configured parameters "needs rehash";
the authenticator replaces such a hash after a successful login.

Contract: :meth:`PasswordHasher.verify` never raises for a malformed or
unknown stored string (it returns False and logs); hashing is slow by
design, so call these from a thread pool, never on the reactor thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from passlib.context import CryptContext
from twisted.logger import Logger

from mailsuite.config import AuthConfig

log = Logger(namespace="mailsuite.users.passwords")

#: The schemes passlib handles for bare (prefix-less) stored strings.
_CRYPT_SCHEMES = ["argon2", "bcrypt", "sha512_crypt", "sha256_crypt", "md5_crypt"]

_BCRYPT_MAX = 72  # bcrypt reads at most 72 bytes of the password


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost: time (passes), memory (KiB) and lanes."""

    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4

    @classmethod
    def from_config(cls, config: AuthConfig) -> Argon2Params:
        return cls(config.argon2_time_cost, config.argon2_memory_cost, config.argon2_parallelism)


def _salted(digest: str, size: int) -> Callable[[bytes, bytes], bool]:
    """Dovecot's SSHA*: ``encode(H(password + salt) + salt)``."""

    def check(secret: bytes, raw: bytes) -> bool:
        if len(raw) <= size:
            return False
        want, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(digest, secret + salt).digest(), want)

    return check


def _plain_digest(digest: str) -> Callable[[bytes, bytes], bool]:
    def check(secret: bytes, raw: bytes) -> bool:
        return hmac.compare_digest(hashlib.new(digest, secret).digest(), raw)

    return check


def _plain(secret: bytes, raw: bytes) -> bool:
    return hmac.compare_digest(secret, raw)


#: Dovecot schemes whose stored value is encoded binary: scheme -> (check, default encoding).
_BINARY_SCHEMES: dict[str, tuple[Callable[[bytes, bytes], bool], str]] = {
    "SSHA512": (_salted("sha512", 64), "b64"),
    "SSHA256": (_salted("sha256", 32), "b64"),
    "SSHA": (_salted("sha1", 20), "b64"),
    "SHA512": (_plain_digest("sha512"), "b64"),
    "SHA256": (_plain_digest("sha256"), "b64"),
    "SHA": (_plain_digest("sha1"), "b64"),
    "SHA1": (_plain_digest("sha1"), "b64"),
    "PLAIN": (_plain, "none"),
    "CLEAR": (_plain, "none"),
    "CLEARTEXT": (_plain, "none"),
}

#: Dovecot schemes that wrap a crypt string passlib verifies.
_CRYPT_WRAPPERS = {
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "BLF-CRYPT",
    "MD5-CRYPT",
    "ARGON2ID",
    "ARGON2I",
    "CRYPT",
}


def _decode(value: str, encoding: str) -> bytes | None:
    try:
        if encoding == "b64":
            return base64.b64decode(value.strip(), validate=True)
        if encoding == "hex":
            return bytes.fromhex(value.strip())
    except (binascii.Error, ValueError):
        return None
    return value.encode("utf-8")


def dovecot_pbkdf2_verify(secret: bytes, value: str) -> bool:
    """Dovecot's PBKDF2 scheme: ``$1$<salt>$<rounds>$<40 hex digits>``."""
    if not value.startswith("$1$"):
        return False
    fields = value[3:].split("$")
    if len(fields) != 3 or not fields[1].isdigit() or len(fields[2]) != 40:
        return False
    try:
        want = bytes.fromhex(fields[2])
    except ValueError:
        return False
    rounds = int(fields[1])
    if not 1 <= rounds <= 10_000_000:
        return False
    got = hashlib.pbkdf2_hmac("sha1", secret, fields[0].encode("utf-8"), rounds, 20)
    return hmac.compare_digest(got, want)


def split_dovecot(stored: str) -> tuple[str, str, str] | None:
    """``(SCHEME, encoding, value)`` of a ``{SCHEME[.enc]}value`` string, else None."""
    if not stored.startswith("{"):
        return None
    end = stored.find("}")
    if end < 2:
        return None
    name, _dot, enc = stored[1:end].upper().partition(".")
    encoding = {"": "", "B64": "b64", "BASE64": "b64", "HEX": "hex"}.get(enc)
    if encoding is None:
        return None
    return name, encoding, stored[end + 1 :]


class PasswordHasher:
    """Hashes new passwords as argon2id; verifies every supported scheme."""

    def __init__(self, params: Argon2Params | None = None) -> None:
        self.params = params or Argon2Params()
        self._context = CryptContext(
            schemes=_CRYPT_SCHEMES,
            default="argon2",
            deprecated="auto",
            argon2__type="ID",
            argon2__time_cost=self.params.time_cost,
            argon2__memory_cost=self.params.memory_cost,
            argon2__parallelism=self.params.parallelism,
        )
        self._dummy: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: AuthConfig) -> PasswordHasher:
        return cls(Argon2Params.from_config(config))

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password`` (blocking, slow by design)."""
        return str(self._context.hash(password))

    @property
    def dummy_hash(self) -> str:
        """An argon2id hash of a random secret, with the current parameters.

        Verifying an unknown user against it costs what verifying a real user
        costs, so replies and timing do not tell which addresses exist.
        """
        with self._lock:
            if self._dummy is None:
                self._dummy = self.hash(base64.b64encode(os.urandom(24)).decode("ascii"))
            return self._dummy

    def identify(self, stored: str) -> str | None:
        """A short scheme name ("argon2id", "bcrypt", "dovecot:SSHA512" ...) or None."""
        parts = split_dovecot(stored)
        if parts is not None:
            name, _encoding, value = parts
            if name in _CRYPT_WRAPPERS:
                # Only crypt formats we can verify (not DES crypt, for example).
                return f"dovecot:{name}" if self._context.identify(value) else None
            if name in _BINARY_SCHEMES or name == "PBKDF2":
                return f"dovecot:{name}"
            return None
        scheme = self._context.identify(stored)
        if scheme == "argon2":
            return "argon2i" if stored.startswith("$argon2i$") else "argon2id"
        return str(scheme) if scheme else None

    def verify(self, password: str, stored: str) -> bool:
        """True when ``password`` matches ``stored``; False for a mismatch or
        for a stored string that is malformed or of an unknown scheme."""
        secret = password.encode("utf-8")
        parts = split_dovecot(stored)
        try:
            if parts is None:
                return self._verify_crypt(secret, stored)
            name, encoding, value = parts
            if name in _CRYPT_WRAPPERS:
                return self._verify_crypt(secret, value)
            if name == "PBKDF2":
                return dovecot_pbkdf2_verify(secret, value)
            if name in _BINARY_SCHEMES:
                check, default = _BINARY_SCHEMES[name]
                raw = _decode(value, encoding or default)
                return raw is not None and check(secret, raw)
        except (ValueError, TypeError) as e:
            log.warn("cannot verify a stored password hash: {error}", error=str(e))
            return False
        log.warn("unknown password scheme in the directory: {prefix!r}", prefix=stored[:12])
        return False

    def _verify_crypt(self, secret: bytes, stored: str) -> bool:
        scheme = self._context.identify(stored)
        if scheme is None:
            log.warn("unknown password hash format in the directory")
            return False
        if scheme == "bcrypt":
            secret = secret[:_BCRYPT_MAX]
        return bool(self._context.verify(secret, stored))

    def needs_rehash(self, stored: str) -> bool:
        """True unless ``stored`` is argon2id with the configured parameters."""
        if split_dovecot(stored) is not None or not stored.startswith("$argon2id$"):
            return True
        try:
            return bool(self._context.needs_update(stored))
        except ValueError:
            return True
