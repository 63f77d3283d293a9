"""DirectoryAuthenticator: cred portal, rehash, cache, throttle (fake clock)."""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import hashlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from passlib.hash import sha512_crypt
from twisted.cred import credentials
from twisted.internet import defer, task
from twisted.python.failure import Failure

from mailsuite.config import AuthConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import UserRecord
from mailsuite.threads import InlineRunner
from mailsuite.users.auth import DirectoryAuthenticator
from mailsuite.users.cred import IMailUser, MailRealm
from mailsuite.users.directory import SQLiteDirectory
from mailsuite.users.passwords import PasswordHasher

from .conftest import CHEAP

ALICE = "alice@example.test"


class CountingHasher(PasswordHasher):
    """The real hasher, counting verifications and the hashes they used."""

    def __init__(self) -> None:
        super().__init__(CHEAP)
        self.verified: list[str] = []

    def verify(self, password: str, stored: str) -> bool:
        self.verified.append(stored)
        return super().verify(password, stored)


class PoolRunner:
    """Runs work in a real thread and records that it left the caller's thread."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(2)
        self.calls: list[str] = []

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        self.calls.append(getattr(fn, "__name__", repr(fn)))
        try:
            return defer.succeed(self.pool.submit(fn, *args, **kw).result())
        except Exception:
            return defer.fail(Failure())


@pytest.fixture
def clock() -> task.Clock:
    c = task.Clock()
    c.advance(1_000_000)
    return c


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def d(directory: SQLiteDirectory, hasher: CountingHasher) -> SQLiteDirectory:
    directory.add_domain("example.test")
    directory.add_user(ALICE, hasher.hash("secret"))
    return directory


def make_auth(
    d: SQLiteDirectory, clock: task.Clock, hasher: PasswordHasher, runner: Any = None, **cfg: Any
) -> DirectoryAuthenticator:
    config = dataclasses.replace(
        AuthConfig(argon2_time_cost=1, argon2_memory_cost=8, argon2_parallelism=1), **cfg
    )
    return DirectoryAuthenticator(
        d, runner or InlineRunner(), clock, config, secret=b"k" * 32, hasher=hasher
    )


@pytest.fixture
def auth(d: SQLiteDirectory, clock: task.Clock, hasher: CountingHasher) -> DirectoryAuthenticator:
    return make_auth(d, clock, hasher)


def outcome(dfr: defer.Deferred[Any], clock: task.Clock | None = None) -> Any:
    """The result or the MailError of a Deferred, after running the clock."""
    results: list[Any] = []
    dfr.addBoth(results.append)
    if clock is not None and not results:
        clock.advance(3600)
    assert results, "deferred did not fire"
    result = results[0]
    if isinstance(result, Failure):
        result.trap(MailError)
        return result.value
    return result


def test_login_success(auth: DirectoryAuthenticator) -> None:
    rec = outcome(auth.login("Alice@Example.TEST", "secret", "192.0.2.1", "imap"))
    assert rec == UserRecord(ALICE)


def test_hashing_runs_in_the_pool(d: SQLiteDirectory, clock: task.Clock) -> None:
    main = threading.current_thread()
    seen: list[bool] = []

    class ThreadCheckingHasher(PasswordHasher):
        def verify(self, password: str, stored: str) -> bool:
            seen.append(threading.current_thread() is not main)
            return super().verify(password, stored)

        def hash(self, password: str) -> str:
            seen.append(threading.current_thread() is not main)
            return super().hash(password)

    runner = PoolRunner()
    h = ThreadCheckingHasher(CHEAP)
    d.set_password_hash(ALICE, "{PLAIN}secret")
    auth = make_auth(d, clock, h, runner=runner)
    assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)
    assert isinstance(
        outcome(auth.login("nobody@example.test", "x", "192.0.2.1", "imap"), clock), MailError
    )
    assert seen and all(seen)
    assert "get_credentials" in runner.calls
    runner.pool.shutdown()


def test_unknown_user_wrong_password_and_disabled_look_the_same(
    auth: DirectoryAuthenticator, d: SQLiteDirectory, hasher: CountingHasher, clock: task.Clock
) -> None:
    d.add_user("bob@example.test", hasher.hash("bobpw"))
    d.set_enabled("bob@example.test", False)
    errors = []
    costs = []
    for user, pw, peer in [
        ("nobody@example.test", "secret", "192.0.2.1"),
        (ALICE, "wrong", "192.0.2.2"),
        ("bob@example.test", "bobpw", "192.0.2.3"),
        ("not an address", "secret", "192.0.2.4"),
    ]:
        hasher.verified.clear()
        err = outcome(auth.login(user, pw, peer, "smtp"), clock)
        errors.append((err.kind, err.public_text, str(err)))
        # The same work: one verification against an argon2id hash with the same cost.
        costs.append([h.split("$")[1:4] for h in hasher.verified])
    assert len(set(errors)) == 1
    assert errors[0][0] is ErrorKind.AUTH_FAILED
    assert len({repr(c) for c in costs}) == 1
    assert costs[0] == [["argon2id", "v=19", "m=8,t=1,p=1"]]


def test_failed_reply_is_delayed(auth: DirectoryAuthenticator, clock: task.Clock) -> None:
    results: list[Any] = []
    auth.login(ALICE, "wrong", "192.0.2.1", "pop3").addErrback(results.append)
    assert results == []
    clock.advance(0.99)
    assert results == []
    clock.advance(0.02)
    assert results and results[0].value.kind is ErrorKind.AUTH_FAILED


@pytest.mark.parametrize("scheme", ["{SSHA512}", "{PBKDF2}", "$6$", "{PLAIN}"])
def test_rehash_on_login(
    auth: DirectoryAuthenticator, d: SQLiteDirectory, hasher: CountingHasher, scheme: str
) -> None:
    salt = os.urandom(8)
    legacy = {
        "{SSHA512}": "{SSHA512}"
        + base64.b64encode(hashlib.sha512(b"secret" + salt).digest() + salt).decode(),
        "{PBKDF2}": "{PBKDF2}$1$abcdefgh$1000$"
        + hashlib.pbkdf2_hmac("sha1", b"secret", b"abcdefgh", 1000, 20).hex(),
        "$6$": sha512_crypt.using(rounds=1000).hash("secret"),
        "{PLAIN}": "{PLAIN}secret",
    }[scheme]
    d.set_password_hash(ALICE, legacy)
    assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)
    stored = d.get_password_hash(ALICE)
    assert stored is not None and stored.startswith("$argon2id$")
    assert not hasher.needs_rehash(stored)
    auth.cache.clear()
    assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)


def test_rehash_keeps_a_password_changed_meanwhile(
    d: SQLiteDirectory, clock: task.Clock, hasher: CountingHasher
) -> None:
    d.set_password_hash(ALICE, "{PLAIN}secret")

    class Racing(CountingHasher):
        def hash(self, password: str) -> str:
            if password == "secret":  # the rehash (not the dummy hash)
                d.set_password_hash(ALICE, "{PLAIN}changed")  # admin changes it meanwhile
            return super().hash(password)

    auth = make_auth(d, clock, Racing())
    assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)
    assert d.get_password_hash(ALICE) == "{PLAIN}changed"


def test_cache_hits_expire_and_drop_on_password_change(
    auth: DirectoryAuthenticator, d: SQLiteDirectory, hasher: CountingHasher, clock: task.Clock
) -> None:
    for _ in range(10):  # a client opening ten connections
        assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)
    assert len(hasher.verified) == 1
    # A different password is not a hit.
    assert isinstance(outcome(auth.login(ALICE, "other", "192.0.2.1", "imap"), clock), MailError)
    assert len(hasher.verified) == 2
    # Expiry.
    clock.advance(auth.config.cache_ttl + 1)
    hasher.verified.clear()
    outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"))
    assert len(hasher.verified) == 1
    # Password changed by the admin: the old password fails at once.
    d.set_password_hash(ALICE, hasher.hash("new"))
    err = outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"), clock)
    assert err.kind is ErrorKind.AUTH_FAILED
    assert outcome(auth.login(ALICE, "new", "192.0.2.1", "imap")) == UserRecord(ALICE)


def test_cache_respects_disable_and_delete(
    auth: DirectoryAuthenticator, d: SQLiteDirectory, clock: task.Clock
) -> None:
    outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"))
    d.set_enabled(ALICE, False)
    assert (
        outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"), clock).kind
        is ErrorKind.AUTH_FAILED
    )
    d.set_enabled(ALICE, True)
    assert outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap")) == UserRecord(ALICE)
    d.delete_user(ALICE)
    assert (
        outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"), clock).kind
        is ErrorKind.AUTH_FAILED
    )


def test_cache_disabled_and_bounded(
    d: SQLiteDirectory, clock: task.Clock, hasher: CountingHasher
) -> None:
    auth = make_auth(d, clock, hasher, cache_ttl=0)
    for _ in range(3):
        outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"))
    assert len(hasher.verified) == 3 and len(auth.cache) == 0
    auth = make_auth(d, clock, hasher, cache_max_entries=2)
    for n in range(4):
        d.add_user(f"u{n}@example.test", hasher.hash("pw"))
        outcome(auth.login(f"u{n}@example.test", "pw", "192.0.2.1", "imap"))
    assert len(auth.cache) == 2


def test_cache_key_never_holds_the_password(auth: DirectoryAuthenticator) -> None:
    outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"))
    assert all(b"secret" not in k for k in auth.cache._entries)
    other = DirectoryAuthenticator(auth.directory, InlineRunner(), auth.clock, auth.config)
    assert other.cache.key(ALICE, "secret") != auth.cache.key(ALICE, "secret")  # random secret
    assert auth.cache.key(ALICE, "secret") != auth.cache.key(ALICE, "secreT")


def test_throttle_delays_refusal_and_other_sources(
    auth: DirectoryAuthenticator, clock: task.Clock
) -> None:
    attacker = "198.51.100.7"
    delays = []
    for _ in range(auth.config.throttle_max_failures):
        results: list[Any] = []
        start = clock.seconds()
        auth.login(ALICE, "guess", attacker, "imap").addErrback(results.append)
        while not results:
            clock.advance(0.5)
        delays.append(clock.seconds() - start)
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 15.0]
    assert set(delays[5:]) == {15.0}
    # Now refused at once, even with the right password, from that source ...
    err = outcome(auth.login(ALICE, "secret", attacker, "imap"))
    assert err.kind is ErrorKind.THROTTLED and err.temporary
    # ... but the owner elsewhere is never locked out.
    assert outcome(auth.login(ALICE, "secret", "203.0.113.5", "imap")) == UserRecord(ALICE)
    # The window passes: allowed again.
    clock.advance(auth.config.throttle_window)
    assert outcome(auth.login(ALICE, "secret", attacker, "imap")) == UserRecord(ALICE)


def test_temporary_directory_trouble_is_not_a_failed_login(
    auth: DirectoryAuthenticator, d: SQLiteDirectory, clock: task.Clock
) -> None:
    d.close()  # every query now fails inside SQLite
    err = outcome(auth.login(ALICE, "secret", "192.0.2.1", "imap"))
    assert err.kind is ErrorKind.TEMPORARY
    assert auth.throttle.failures("192.0.2.1") == 0


def test_over_long_or_empty_input_fails_like_a_wrong_password(
    auth: DirectoryAuthenticator, clock: task.Clock, hasher: CountingHasher
) -> None:
    for user, pw in [(ALICE, "x" * 5000), ("a" * 600, "x"), ("", "x"), (ALICE, "")]:
        err = outcome(auth.login(user, pw, "192.0.2.9", "imap"), clock)
        assert err.kind is ErrorKind.AUTH_FAILED
    assert hasher.verified == []


def test_realm_offers_only_imailuser() -> None:
    realm = MailRealm(lambda a: defer.succeed(UserRecord(a)))
    results: list[Any] = []
    realm.requestAvatar("a@b.test", None, credentials.IUsernamePassword).addErrback(results.append)
    assert results and results[0].check(NotImplementedError)
    ok: list[Any] = []
    realm.requestAvatar("a@b.test", None, IMailUser).addCallback(ok.append)
    assert ok[0][:2] == (IMailUser, UserRecord("a@b.test"))


@pytest.fixture(autouse=True)
def _no_leftover_calls(clock: task.Clock) -> Iterator[None]:
    yield
    clock.advance(10_000)


def test_unknown_user_and_wrong_password_take_similar_time(
    d: SQLiteDirectory, clock: task.Clock
) -> None:
    """Loose check only (medians within 3x); the exact cost equality is checked above."""
    hasher = PasswordHasher(dataclasses.replace(CHEAP, memory_cost=4096))
    d.set_password_hash(ALICE, hasher.hash("secret"))
    auth = make_auth(d, clock, hasher, argon2_memory_cost=4096, cache_ttl=0)
    # Compute the dummy hash once, outside the measurement.
    auth.login("warm@example.test", "x", "192.0.2.200", "imap").addErrback(lambda f: None)
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for n in range(7):
        for name, user in (("unknown", "nobody@example.test"), ("wrong", ALICE)):
            start = time.perf_counter()
            auth.login(user, "guess", f"192.0.2.{n}", "imap").addErrback(lambda f: None)
            timings[name].append(time.perf_counter() - start)
    unknown, wrong = (statistics.median(timings[k]) for k in ("unknown", "wrong"))
    assert 1 / 3 < unknown / wrong < 3, timings
