"""LookupBatcher: one runner call in flight per listener; lookups that queue
meanwhile go together in the next call, each with its own result."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet.address import IPv4Address

from mailsuite.errors import ErrorKind, MailError
from mailsuite.smtp.lookups import LookupBatcher
from tests.smtp.conftest import Env, ManualRunner, TLSStringTransport


def _lookup(value: Any) -> Any:
    if isinstance(value, Exception):
        raise value
    return value


def test_lookups_wait_for_the_call_in_flight_then_go_together() -> None:
    runner = ManualRunner(auto=False)
    batcher = LookupBatcher(SimpleNamespace(runner=runner))
    results: list[Any] = []
    first = batcher.run(_lookup, 1)
    first.addCallback(results.append)
    assert len(runner.pending) == 1
    later = [batcher.run(_lookup, v) for v in (2, MailError(ErrorKind.UNKNOWN_MAILBOX), 4)]
    for d in later:
        d.addBoth(results.append)
    assert len(runner.pending) == 1  # still only the first call
    assert runner.flush() == 2  # the first call, then one call for the three others
    assert results[0] == 1 and results[1] == 2 and results[3] == 4
    assert results[2].value.kind is ErrorKind.UNKNOWN_MAILBOX  # a Failure for that caller only
    assert runner.calls == 2


def test_lookup_queued_by_a_callback_runs_in_the_next_call() -> None:
    runner = ManualRunner(auto=False)
    batcher = LookupBatcher(SimpleNamespace(runner=runner))
    seen: list[Any] = []

    def chain(value: Any) -> None:
        seen.append(value)
        if value < 3:
            batcher.run(_lookup, value + 1).addCallback(chain)

    batcher.run(_lookup, 1).addCallback(chain)
    runner.flush()
    assert seen == [1, 2, 3] and runner.calls == 3


def test_recipients_of_two_sessions_share_one_runner_call(env: Env) -> None:
    env.runner.auto = False
    a = env.client()
    b_proto: Any = a.factory.buildProtocol(IPv4Address("TCP", "192.0.2.8", 40001))
    b_transport = TLSStringTransport()
    b_proto.makeConnection(b_transport)
    b_proto.dataReceived(b"EHLO b.example\r\n")
    env.runner.flush()
    b_transport.clear()
    a.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    b_proto.dataReceived(b"MAIL FROM:<t@remote.example>\r\nRCPT TO:<nobody@example.test>\r\n")
    assert len(env.runner.pending) == 1  # a's lookup runs; b's waits on the reactor thread
    calls = env.runner.calls
    env.runner.flush()
    assert env.runner.calls == calls + 1  # b's lookup: one more call
    assert a.codes() == ["250 2.1.0", "250 2.1.5"]
    b_codes = [line[:9] for line in b_transport.value().decode().split("\r\n") if line]
    assert b_codes == ["250 2.1.0", "550 5.1.1"]
