"""Storage benchmark (issue 3): prints its figures, asserts nothing.

    .venv/bin/python bench/storage.py [--dir DIR] [--messages 100000]

* durable deliveries per second through MaildirDeliveryAgent (4 KiB
  messages, fsync of the file and of ``new/`` before a delivery counts) with 1
  and 16 concurrent writer threads;
* opening a folder of N messages: first open (no uidlist, no index: assigns
  every UID), cold open (uidlist but no index), warm open (index valid);
* changing flags on 10,000 messages, and the sync after it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage.index import CACHE_FILE, INDEX_FILE
from mailsuite.storage.store import MaildirStore

BODY = b"Subject: bench\r\n\r\n" + (b"x" * 78 + b"\r\n") * 52
MESSAGE = BODY[:4096]


def deliveries(root: Path, threads: int, per_thread: int) -> float:
    store = MaildirStore(root / f"mail-{threads}")
    agent = MaildirDeliveryAgent(store)
    store.account("bench@example.org").ensure_created()
    targets = {"bench@example.org": [LocalTarget("bench@example.org")]}

    def work() -> None:
        for _ in range(per_thread):
            d = agent.begin(Envelope("a@example.org", ["bench@example.org"]))
            d.write(MESSAGE)
            (result,) = d.commit(targets)
            assert result.error is None

    pool = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * per_thread / (time.perf_counter() - start)


def build_folder(folder: Path, n: int) -> None:
    cur = folder / "cur"
    for i in range(n):
        size = 200 + i % 1000
        name = f"1700000000.M{i}P1Q{i}.bench,S={size},W={size}:2,{'S' if i % 3 else ''}"
        fd = os.open(cur / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"Subject: x\r\n\r\n")
        os.close(fd)


def age(folder: Path) -> None:
    past = time.time() - 60
    for sub in ("cur", "new"):
        os.utime(folder / sub, (past, past))


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def open_and_flags(root: Path, n: int) -> None:
    store = MaildirStore(root / "big")
    acct = store.account("big@example.org")
    acct.ensure_created()
    folder = acct.root
    t, _ = timed(lambda: build_folder(folder, n))
    print(f"  built {n} message files in {t:.1f} s")
    age(folder)
    t, box = timed(lambda: acct.open("INBOX"))
    print(f"first open, assigns {len(box.messages())} UIDs:  {t:8.3f} s")
    (folder / INDEX_FILE).unlink()
    age(folder)
    t, box = timed(lambda: acct.open("INBOX"))
    print(f"cold open (no index):            {t:8.3f} s")
    age(folder)
    acct.open("INBOX")  # records trusted directory signatures
    t, box = timed(lambda: acct.open("INBOX"))
    print(f"warm open (index valid):         {t:8.3f} s   (target < 0.3 s)")
    t, _ = timed(lambda: [m.flags for m in box.messages()])
    print(f"messages() iterate all {n}:   {t:8.3f} s")
    uids = list(box.uids())[:10_000]
    t, _ = timed(lambda: box.store_flags(uids, ["\\Flagged", "$Label1"], "add"))
    print(f"store_flags on 10,000 messages:  {t:8.3f} s  ({10_000 / t:,.0f}/s)")
    t, _ = timed(box.sync)
    print(f"sync after it (own changes):     {t:8.3f} s")
    age(folder)
    t, _ = timed(lambda: acct.open("INBOX"))
    print(f"open by another view after it:   {t:8.3f} s")
    (folder / CACHE_FILE).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to work (default: a temp dir)"
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mailsuite-bench-", dir=args.dir))
    try:
        print(f"storage benchmark in {root} ({os.cpu_count()} CPUs)")
        for threads in (1, 16):
            rate = deliveries(root, threads, max(1, args.deliveries // threads))
            print(f"durable deliveries, {threads:2d} writer(s):  {rate:8.0f} /s   (4 KiB)")
        open_and_flags(root, args.messages)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
