"""Large FETCH and SEARCH: work in batches through the runner, output written
per batch, and a slow reader (transport asks to pause) stops the loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer

from tests.imap.support import Client, add_user, fill, make_context


class ManualRunner:
    """Runs each call only when the test says so."""

    def __init__(self) -> None:
        self.pending: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []

    def run(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append((fn, args, d))
        return d

    def step(self) -> None:
        fn, args, d = self.pending.pop(0)
        d.callback(fn(*args))

    def drain(self) -> None:
        while self.pending:
            self.step()


def setup(tmp_path: Path, n: int) -> tuple[Client, ManualRunner]:
    ctx = make_context(tmp_path)
    add_user(ctx)
    fill(ctx, n)
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    runner = ManualRunner()
    ctx.runner = runner
    return c, runner


def test_fetch_is_batched_and_paused_by_a_slow_reader(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 250)
    assert c.cmd("FETCH 1:* BODY.PEEK[]") == b""
    assert len(runner.pending) == 1
    runner.step()  # first batch (100 messages) rendered and written at once
    out = c.read()
    assert out.count(b" FETCH (") == 100 and out.startswith(b"* 1 FETCH")
    assert len(runner.pending) == 1
    c.transport.producer.pauseProducing()
    runner.step()
    assert c.read().count(b" FETCH (") == 100
    assert runner.pending == []  # paused: the third batch waits
    c.transport.producer.resumeProducing()
    runner.drain()
    out = c.read()
    assert out.count(b" FETCH (") == 50 and out.endswith(b"t3 OK FETCH completed\r\n")
    assert c.transport.producer is None  # unregistered after the command


def test_fetch_input_waits_for_the_command(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 150)
    c.raw(b"a FETCH 1:* (UID BODY.PEEK[HEADER])\r\nb NOOP\r\n")  # through the runner
    assert b"b OK" not in c.read()
    runner.drain()
    out = c.read()
    assert out.index(b"a OK") < out.index(b"b OK")


def test_search_runs_in_batches(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 250)
    c.cmd('SEARCH BODY "message 24"')
    calls = 0
    while runner.pending:
        runner.step()
        calls += 1
    out = c.read()
    assert calls >= 2  # 250 messages in batches of 200 (then a sync if cur/ looks changed)
    expected = b"* SEARCH 25 " + b" ".join(b"%d" % i for i in range(241, 251)) + b"\r\n"
    assert out.startswith(expected)


def test_fetch_stops_when_the_client_goes_away(tmp_path: Path) -> None:
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    c, runner = setup(tmp_path, 250)
    c.cmd("FETCH 1:* BODY.PEEK[]")
    runner.step()
    c.proto.connectionLost(Failure(ConnectionLost()))
    runner.drain()
    assert runner.pending == []
    assert c.read().count(b" FETCH (") == 100  # no further batch was rendered


def test_fetch_of_a_cached_body_needs_no_pool_call(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 3)
    first = c.cmd("FETCH 2 (UID BODY.PEEK[])")
    assert len(runner.pending) == 1  # the file is read in the pool
    runner.drain()
    first += c.read()
    second = c.cmd("FETCH 2 (UID BODY.PEEK[])")
    assert runner.pending == []  # now from the body cache, on the reactor
    second += c.read()
    assert first.split(b"\r\n")[:-2] == second.split(b"\r\n")[:-2]
    assert b"* 2 FETCH (UID 2 BODY[] {" in second and second.endswith(b" OK FETCH completed\r\n")
    c.cmd("FETCH 2 (BODY[])")  # sets \\Seen: through the pool
    assert len(runner.pending) == 1
    runner.drain()
    assert b"\\Seen" in c.read()


def test_header_fetch_from_the_header_cache_needs_no_pool_call(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 3)
    command = "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] RFC822.SIZE)"
    first = c.cmd(command)
    assert len(runner.pending) == 1
    runner.drain()
    first += c.read()
    second = c.cmd(command)
    assert runner.pending == []  # every header is in memory now
    second += c.read()
    assert first.count(b" FETCH (") == 3
    assert first.split(b"\r\n")[:-2] == second.split(b"\r\n")[:-2]


def test_search_answered_from_the_header_cache_needs_no_pool_call(tmp_path: Path) -> None:
    c, runner = setup(tmp_path, 5)
    for command in ('SEARCH FROM "nobody"', 'SEARCH TEXT "message 3"', 'SEARCH SUBJECT "2"'):
        first = c.cmd(command)
        runner.drain()  # cold: the pool reads the files and fills the cache
        first += c.read()
        second = c.cmd(command)
        assert runner.pending == [], command
        second += c.read()
        assert first.split(b"\r\n")[0] == second.split(b"\r\n")[0]
        assert first.startswith(b"* SEARCH")
