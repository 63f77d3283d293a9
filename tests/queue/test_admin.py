"""``mailsuite-admin queue ...`` on the queue files, alone and next to a running runner."""

from __future__ import annotations

import io
from pathlib import Path

from twisted.names import dns

from mailsuite.admin import exits
from mailsuite.admin.cli import main
from mailsuite.delivery.queue_store import QueueStore
from mailsuite.interfaces import Envelope
from tests.queue.support import QueueTestCase


def admin(data: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--data-dir", str(data), "queue", *argv], stdin=io.StringIO(), stdout=out)
    return code, out.getvalue()


def _queue(data: Path, n: int = 2) -> tuple[QueueStore, list[str]]:
    store = QueueStore(data / "queue")
    env = Envelope("alice@example.test", ["bob@remote.test"], {}, {})
    ids = [store.enqueue(env, b"Subject: s\r\n\r\nbody\r\n", now=1000.0 + i) for i in range(n)]
    return store, ids


def test_list_show_and_empty(tmp_path: Path) -> None:
    assert admin(tmp_path, "list") == (0, "0 queued message(s)\n")
    store, ids = _queue(tmp_path)
    e = store.load(ids[0])
    e.recipients[0].diagnostic = "smtp; 451 4.3.0 later"
    e.recipients[0].status_code = "4.3.0"
    store.save(e)
    code, out = admin(tmp_path, "list")
    assert code == 0
    assert ids[0] in out and ids[1] in out and "<alice@example.test>" in out
    assert "bob@remote.test: smtp; 451 4.3.0 later" in out
    assert out.endswith("2 queued message(s)\n")
    code, out = admin(tmp_path, "show", ids[0], "--message")
    assert code == 0
    assert "recipient <bob@remote.test>: pending" in out
    assert "last result: 4.3.0 smtp; 451 4.3.0 later" in out
    assert "Subject: s\n\nbody" in out
    assert admin(tmp_path, "show", "0" * 19)[0] == exits.NOINPUT
    assert admin(tmp_path, "show", "../../etc/passwd")[0] == exits.NOINPUT


def test_flush_retry_delete(tmp_path: Path) -> None:
    store, ids = _queue(tmp_path, 3)
    for qid in ids:
        e = store.load(qid)
        e.next_attempt = 10**12
        store.save(e)
    code, out = admin(tmp_path, "retry", ids[0])
    assert code == 0 and store.load(ids[0]).next_attempt == 0.0
    assert store.load(ids[1]).next_attempt == 10**12
    assert admin(tmp_path, "flush")[0] == 0
    assert all(store.load(q).next_attempt == 0.0 for q in ids)
    code, out = admin(tmp_path, "delete", ids[0])
    assert code == 0 and sorted(store.ids()) == sorted(ids[1:])
    assert admin(tmp_path, "delete", ids[0])[0] == exits.NOINPUT
    assert admin(tmp_path, "delete")[0] == exits.USAGE
    lock = store.lock(ids[1])  # "the server is delivering it"
    assert lock is not None
    code, out = admin(tmp_path, "delete", ids[1])
    assert code == exits.TEMPFAIL and "being delivered" in out
    assert admin(tmp_path, "retry", ids[1])[0] == exits.TEMPFAIL
    lock.release()
    assert admin(tmp_path, "delete", "--all")[0] == 0
    assert store.ids() == []


class RunningServerTests(QueueTestCase):
    async def test_flush_from_the_cli_reaches_the_runner_at_its_next_scan(self) -> None:
        self.dns_records.update(
            {
                "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
                "mx.remote.test": [dns.Record_A("127.0.0.1")],
            }
        )
        self.script.data_end = ["451 4.3.0 later"]
        q = self.make_queue(scan_interval=30.0)
        qid = self.submit(q, ["bob@remote.test"])
        await self.idle(q)
        self.assertEqual(q.store.load(qid).attempts, 1)
        code, _out = admin(self.tmp, "retry", qid)  # data dir = self.tmp (queue in tmp/queue)
        self.assertEqual(code, 0)
        self.clock.advance(30)  # the periodic scan; the retry schedule said 300 s
        await self.idle(q)
        self.assertEqual(len(self.mx_factory.received), 1)
        self.assertEqual(q.store.ids(), [])
