"""The authenticator every protocol logs in through.

:class:`DirectoryAuthenticator` implements
:class:`mailsuite.interfaces.Authenticator`.  ``login`` goes through a
twisted.cred :class:`~twisted.cred.portal.Portal` (one
:class:`~mailsuite.users.cred.DirectoryChecker`, one
:class:`~mailsuite.users.cred.MailRealm`) and:

1. refuses at once with THROTTLED if the client's source has too many
   recent failures (:mod:`mailsuite.users.throttle`);
2. reads the user and stored hash through ``runner.run`` (SQLite);
3. answers from the auth cache when the same user and password verified
   within ``auth.cache_ttl`` seconds *against the same stored hash* (like
   Dovecot's auth cache; the key is HMAC-SHA256(secret, user NUL password),
   so the cache never holds a password);
4. otherwise verifies in the thread pool; an unknown user is verified
   against a dummy argon2id hash, so unknown users, wrong passwords and
   disabled accounts cost the same time and fail with the same
   ``MailError(AUTH_FAILED)``;
5. after a successful verification of a hash that is not current argon2id,
   rehashes the password and stores it (compare-and-swap, so a password
   changed meanwhile is kept);
6. on failure, counts it for the source and delays the reply.

Directory trouble fails with ``MailError(TEMPORARY)`` and is not counted as
a failed login.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from twisted.cred import credentials, error
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from mailsuite.config import AuthConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import BlockingRunner, UserRecord
from mailsuite.users.cred import DirectoryChecker, IMailUser, MailRealm
from mailsuite.users.passwords import PasswordHasher
from mailsuite.users.throttle import LoginThrottle

log = Logger(namespace="mailsuite.users.auth")

#: Longer user names or passwords are refused without hashing.
MAX_USERNAME = 512
MAX_PASSWORD = 1024


class AuthCache:
    """Successful verifications, remembered for ``ttl`` seconds.

    Used on the reactor thread only.  An entry is (stored hash, expiry);
    it counts only while the directory still holds the same hash, and is
    dropped as soon as it does not.
    """

    def __init__(self, clock: Any, ttl: float, max_entries: int, secret: bytes) -> None:
        self._clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self._secret = secret
        self._entries: dict[bytes, tuple[str, float]] = {}

    def key(self, address: str, password: str) -> bytes:
        data = address.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._secret, data, hashlib.sha256).digest()

    def hit(self, key: bytes, stored_hash: str) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        if entry[1] <= self._clock.seconds() or not hmac.compare_digest(entry[0], stored_hash):
            del self._entries[key]
            return False
        return True

    def put(self, key: bytes, stored_hash: str) -> None:
        if self.ttl <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (stored_hash, self._clock.seconds() + self.ttl)
        while len(self._entries) > self.max_entries:  # oldest insertion first
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class DirectoryAuthenticator:
    """Username/password logins against a :class:`SQLiteDirectory`-like directory.

    ``directory`` needs ``get_credentials``, ``get_user`` and
    ``replace_password_hash`` (blocking, called through ``runner``);
    ``clock`` is an IReactorTime.  ``secret`` keys the cache (random if None).
    """

    def __init__(
        self,
        directory: Any,
        runner: BlockingRunner,
        clock: Any,
        config: AuthConfig,
        secret: bytes | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.directory = directory
        self.runner = runner
        self.clock = clock
        self.config = config
        self.hasher = hasher or PasswordHasher.from_config(config)
        self.throttle = LoginThrottle(clock, config)
        self.cache = AuthCache(
            clock, config.cache_ttl, config.cache_max_entries, secret or os.urandom(32)
        )
        realm: Any = MailRealm(self._lookup)
        checker: Any = DirectoryChecker(self._verify)
        self.portal = Portal(realm, [checker])
        # Make the dummy hash now (in the pool), so the first unknown-user
        # login does not cost one hash more than a wrong password does.
        self.runner.run(self._make_dummy).addErrback(
            lambda f: log.failure("auth: cannot prepare the dummy hash", f)
        )

    # -- interfaces.Authenticator ------------------------------------------
    def login(
        self, username: str, password: str, peer: str, protocol: str
    ) -> Deferred[UserRecord]:
        """See the module docstring; never blocks the reactor."""
        try:
            self.throttle.check(peer, protocol)
        except MailError as e:
            return defer.fail(e)
        creds: Any = credentials.UsernamePassword(
            username.encode("utf-8", "surrogateescape"),
            password.encode("utf-8", "surrogateescape"),
        )
        d = self.portal.login(creds, None, IMailUser)

        def succeeded(result: tuple[Any, UserRecord, Any]) -> UserRecord:
            record = result[1]
            self.throttle.succeeded(peer, username, protocol)
            log.info(
                "auth: {protocol} login {user} from {peer}",
                protocol=protocol,
                user=record.address,
                peer=peer,
            )
            return record

        def failed(f: Failure) -> Any:
            if isinstance(f.value, error.UnauthorizedLogin):
                delay = self.throttle.failed(peer, username, protocol)
                log.info(
                    "auth: {protocol} login failed for {user!r} from {peer}",
                    protocol=protocol,
                    user=username[:MAX_USERNAME],
                    peer=peer,
                )
                return self.throttle.wait(delay).addCallback(_raise_auth_failed)
            if isinstance(f.value, MailError) and f.value.kind is ErrorKind.TEMPORARY:
                log.failure("auth: directory unavailable", f)
                return f
            log.failure("auth: unexpected error during login", f)
            raise MailError(ErrorKind.TEMPORARY)

        return d.addCallbacks(succeeded, failed)

    # -- checker and realm back ends ---------------------------------------
    def _lookup(self, address: str) -> Deferred[UserRecord | None]:
        return self.runner.run(self.directory.get_user, address)

    def _verify(self, username: str, password: str) -> Deferred[str]:
        """Fires with the normalised address or fails with UnauthorizedLogin."""
        if not username or not password or len(username) > MAX_USERNAME:
            return defer.fail(error.UnauthorizedLogin())
        if len(password) > MAX_PASSWORD:
            return defer.fail(error.UnauthorizedLogin())
        d = self.runner.run(self.directory.get_credentials, username)
        return d.addCallback(self._check, password)

    def _check(self, found: tuple[UserRecord, str] | None, password: str) -> Deferred[str]:
        if found is None:
            # Same work as for a real user, in the pool (the dummy hash too).
            d = self.runner.run(self._verify_dummy, password)
            return d.addCallback(_reject)
        record, stored = found
        key = self.cache.key(record.address, password)
        if self.cache.hit(key, stored):
            return defer.succeed(record.address) if record.enabled else _reject()

        def verified(result: tuple[bool, str]) -> str:
            ok, current = result
            if not ok:
                raise error.UnauthorizedLogin()
            self.cache.put(key, current)
            if not record.enabled:
                log.info("auth: {user} is disabled", user=record.address)
                raise error.UnauthorizedLogin()
            return record.address

        checked = self.runner.run(self._verify_and_rehash, record.address, password, stored)
        return checked.addCallback(verified)

    def _make_dummy(self) -> str:
        return self.hasher.dummy_hash

    def _verify_dummy(self, password: str) -> bool:
        return self.hasher.verify(password, self.hasher.dummy_hash)

    def _verify_and_rehash(self, address: str, password: str, stored: str) -> tuple[bool, str]:
        """Blocking: verify, and replace an outdated hash.  Returns (ok, hash now stored)."""
        if not self.hasher.verify(password, stored):
            return False, stored
        if not self.hasher.needs_rehash(stored):
            return True, stored
        new = self.hasher.hash(password)
        try:
            replaced = self.directory.replace_password_hash(address, stored, new)
        except MailError as e:
            log.warn(
                "auth: could not store the rehashed password of {user}: {e}", user=address, e=e
            )
            return True, stored
        if replaced:
            log.info("auth: rehashed the password of {user} to argon2id", user=address)
            return True, new
        return True, stored


def _reject(*_: Any) -> Deferred[str]:
    return defer.fail(error.UnauthorizedLogin())


def _raise_auth_failed(_: Any) -> UserRecord:
    raise MailError(ErrorKind.AUTH_FAILED)
