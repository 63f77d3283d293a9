"""LoginThrottle with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task
from twisted.logger import capturedLogs

from mailsuite.config import AuthConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.users import throttle as throttle_mod
from mailsuite.users.throttle import LoginThrottle, source_key


@pytest.fixture
def clock() -> task.Clock:
    return task.Clock()


def make(clock: task.Clock, **kw: Any) -> LoginThrottle:
    return LoginThrottle(clock, AuthConfig(**kw))


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("/run/socket", "/run/socket"),
        ("", ""),
    ],
)
def test_source_key(peer: str, key: str) -> None:
    assert source_key(peer) == key


def test_delays_double_to_the_cap(clock: task.Clock) -> None:
    t = make(clock, throttle_base_delay=1.0, throttle_max_delay=15.0, throttle_max_failures=100)
    assert [t.failed("192.0.2.1", "u") for _ in range(7)] == [1, 2, 4, 8, 15, 15, 15]
    t0 = make(clock, throttle_base_delay=0.0)
    assert t0.failed("192.0.2.1", "u") == 0.0


def test_refusal_until_the_window_passes(clock: task.Clock) -> None:
    t = make(clock, throttle_max_failures=3, throttle_window=60.0)
    for _ in range(3):
        t.check("192.0.2.1")
        t.failed("192.0.2.1", "u")
        clock.advance(1)
    with pytest.raises(MailError) as e:
        t.check("192.0.2.1")
    assert e.value.kind is ErrorKind.THROTTLED
    t.check("192.0.2.2")  # another IPv4 address is another source
    clock.advance(57)  # the first failure ages out at t=60
    t.check("192.0.2.1")
    assert t.failures("192.0.2.1") == 2


def test_ipv6_64_is_one_source(clock: task.Clock) -> None:
    t = make(clock, throttle_max_failures=2)
    t.failed("2001:db8::1", "u")
    t.failed("2001:db8::2", "v")
    with pytest.raises(MailError):
        t.check("2001:db8::ffff")
    t.check("2001:db8:0:1::1")


def test_success_forgets_only_the_users_own_failures(clock: task.Clock) -> None:
    t = make(clock)
    t.failed("192.0.2.1", "alice@example.test")
    t.failed("192.0.2.1", "bob@example.test")
    t.failed("192.0.2.1", "Alice@Example.test")
    t.succeeded("192.0.2.1", "alice@example.test")
    assert t.failures("192.0.2.1") == 1
    t.succeeded("192.0.2.1", "bob@example.test")
    assert t.failures("192.0.2.1") == 0
    t.succeeded("192.0.2.1", "bob@example.test")  # nothing to forget


def test_every_decision_is_logged(clock: task.Clock) -> None:
    t = make(clock, throttle_max_failures=1)
    with capturedLogs() as events:
        t.failed("192.0.2.1", "u", "imap")
        with pytest.raises(MailError):
            t.check("192.0.2.1", "imap")
        t.succeeded("192.0.2.1", "u", "imap")
    texts = [e["log_format"] for e in events]
    assert any("failed" in x for x in texts)
    assert any("refused" in x for x in texts)
    assert any("succeeded" in x for x in texts)
    assert all(e.get("source") == "192.0.2.1" for e in events)


def test_wait_uses_the_clock(clock: task.Clock) -> None:
    t = make(clock)
    fired: list[None] = []
    t.wait(2.0).addCallback(fired.append)
    clock.advance(1.9)
    assert not fired
    clock.advance(0.1)
    assert fired == [None]


def test_memory_is_bounded(clock: task.Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle_mod, "MAX_SOURCES", 10)
    t = make(clock)
    for n in range(50):
        t.failed(f"10.0.0.{n}", "u")
    assert len(t._failures) <= 10
    assert t.failures("10.0.0.49") == 1
