"""A queue process killed during delivery: after a restart the recipient that
was delivered is not sent again, the other one is delivered."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mailsuite.delivery.queue_store import DELIVERED, PENDING, QueueStore
from mailsuite.interfaces import Envelope
from tests.harness import subprocess_env, wait_until

HERE = Path(__file__).resolve().parent


def _received(state: Path) -> list[dict[str, Any]]:
    path = state / "received.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_killed_during_delivery_resumes_without_resending(tmp_path: Path) -> None:
    state, data = tmp_path / "mx", tmp_path / "data"
    state.mkdir()
    data.mkdir()
    (state / "hang").write_text("b.test\n")  # the MX never answers DATA for b.test
    mx = _spawn(str(HERE / "fakes.py"), str(state))
    procs = [mx]
    try:
        ports = json.loads(
            wait_until(
                "fake MX",
                lambda: (state / "ports.json").exists() and (state / "ports.json").read_text(),
            )
        )
        store = QueueStore(data / "queue")
        env = Envelope("alice@example.test", ["x@a.test", "y@b.test"], {}, {})
        qid = store.enqueue(env, b"Subject: crash\r\n\r\nbody\r\n", now=time.time())
        driver_args = (
            str(HERE / "queue_driver.py"),
            str(data),
            str(ports["dns"]),
            str(ports["mx"]),
        )
        first = _spawn(*driver_args)
        procs.append(first)

        def a_saved_b_in_flight() -> bool:
            got = {r for t in _received(state) for r in t["rcpts"]}
            statuses = {r.address: r.status for r in store.load(qid).recipients}
            return got == {"x@a.test", "y@b.test"} and statuses["x@a.test"] == DELIVERED

        wait_until("a.test delivered and b.test hanging", a_saved_b_in_flight)
        first.kill()  # SIGKILL: no cleanup of any kind
        first.wait()
        statuses = {r.address: r.status for r in store.load(qid).recipients}
        assert statuses == {"x@a.test": DELIVERED, "y@b.test": PENDING}

        (state / "hang").unlink()
        second = _spawn(*driver_args)
        procs.append(second)
        wait_until("the queue to empty", lambda: store.ids() == [])
        rcpts = [r for t in _received(state) for r in t["rcpts"]]
        assert rcpts.count("x@a.test") == 1  # never sent again
        assert rcpts.count("y@b.test") == 2  # the unanswered try, then the real one
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stderr:
                p.stderr.close()
