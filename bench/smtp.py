"""SMTP receive benchmark: N concurrent sessions each sending M messages of S bytes.

Starts the real server (``twistd mailsuite``, tests/harness.py) on a fresh
data directory unless ``--port`` points at a running one, and drives the MX
port with a small asyncio client that pipelines MAIL/RCPT/DATA (RFC 2920).
A message counts as *durable* when the server answered 250 to its end of
data: the server sends that only after the Maildir commit (fsync of the file
and of ``new/``).

Prints accepted messages per second (over all sessions, wall clock from the
first connect to the last 250) for each run and the median of ``--runs``.
With ``--smtp-source`` (Debian package postfix, binary only — Postfix itself
is not run) it also runs Postfix's ``smtp-source`` load generator against
the same server and prints its rate.

    .venv/bin/python bench/smtp.py                   # 20 sessions x 100 msgs x 4 KiB
    .venv/bin/python bench/smtp.py --sessions 20 --messages 200 --size 4096 --runs 3
    .venv/bin/python bench/smtp.py --smtp-source
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import ServerProcess

DOMAIN = "bench.test"
USERS = [f"u{i}@{DOMAIN}" for i in range(20)]


def make_body(size: int, n: int) -> bytes:
    head = f"From: bench@remote.example\r\nTo: u@{DOMAIN}\r\nSubject: bench {n}\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    body = head + line * max(0, (size - len(head)) // len(line))
    return body + b"y" * max(0, size - len(body) - 2) + b"\r\n"


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def session(port: int, index: int, count: int, size: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await read_reply(reader)
    writer.write(b"EHLO bench.client\r\n")
    await read_reply(reader)
    ok = 0
    rcpt = USERS[index % len(USERS)].encode()
    for n in range(count):
        body = make_body(size, n)
        writer.write(
            b"MAIL FROM:<bench@remote.example> SIZE=%d\r\nRCPT TO:<%s>\r\nDATA\r\n"
            % (len(body), rcpt)
        )
        replies = [await read_reply(reader) for _ in range(3)]
        if [r[:3] for r in replies] != [b"250", b"250", b"354"]:
            raise RuntimeError(f"unexpected replies {replies!r}")
        writer.write(body + b".\r\n")
        done = await read_reply(reader)
        if done.startswith(b"250"):
            ok += 1
        else:
            raise RuntimeError(f"message refused: {done!r}")
    writer.write(b"QUIT\r\n")
    await read_reply(reader)
    writer.close()
    return ok


async def run_once(port: int, sessions: int, messages: int, size: int) -> tuple[int, float]:
    start = time.perf_counter()
    results = await asyncio.gather(*(session(port, i, messages, size) for i in range(sessions)))
    return sum(results), time.perf_counter() - start


def run_smtp_source(port: int, sessions: int, messages: int, size: int) -> float | None:
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not os.path.exists(binary):
        print("smtp-source not found (apt-get install postfix); skipped")
        return None
    total = sessions * messages
    cmd = [
        binary,
        "-s", str(sessions),
        "-m", str(total),
        "-l", str(size),
        "-f", "bench@remote.example",
        "-t", USERS[0],
        "-c",
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"smtp-source failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        return None
    return total / elapsed


def count_delivered(maildir: Path) -> int:
    return sum(1 for _ in maildir.glob(f"{DOMAIN}/*/new/*")) + sum(
        1 for _ in maildir.glob(f"{DOMAIN}/*/cur/*")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--messages", type=int, default=100, help="messages per session")
    ap.add_argument("--size", type=int, default=4096, help="message size in bytes")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smtp-source", action="store_true", help="also run Postfix smtp-source")
    ap.add_argument("--port", type=int, default=0, help="use a running server's MX port")
    ap.add_argument(
        "--workers", type=int, default=0, help="server.workers (0: one per core, the default)"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailsuite-bench-") as tmp:
        srv = None
        port = args.port
        if not port:
            srv = ServerProcess(
                Path(tmp),
                roles=("smtp",),
                extra_config={
                    "server": {"workers": args.workers},
                    "limits": {"max_connections_per_ip": 1000},
                    "auth": {
                        "argon2_time_cost": 1,
                        "argon2_memory_cost": 8,
                        "argon2_parallelism": 1,
                    },
                },
            )
            srv.start()
            srv.admin("domain", "add", DOMAIN)
            for user in USERS:
                srv.admin("user", "add", user, "--password-stdin", stdin="bench-password\n")
            port = srv.ports["smtp"]
        try:
            rates = []
            for run in range(args.runs):
                ok, elapsed = asyncio.run(run_once(port, args.sessions, args.messages, args.size))
                rate = ok / elapsed
                rates.append(rate)
                print(
                    f"run {run + 1}: {ok} messages of {args.size} B in {elapsed:.2f} s "
                    f"with {args.sessions} sessions: {rate:.0f} durable msgs/s"
                )
            print(f"median: {statistics.median(rates):.0f} durable msgs/s (our asyncio client)")
            if srv is not None:
                expected = args.runs * args.sessions * args.messages
                print(f"maildir holds {count_delivered(srv.maildir)} of {expected} messages")
            if args.smtp_source:
                src_rates = []
                for _ in range(args.runs):
                    rate2 = run_smtp_source(port, args.sessions, args.messages, args.size)
                    if rate2 is None:
                        break
                    src_rates.append(rate2)
                    print(f"smtp-source: {rate2:.0f} msgs/s")
                if src_rates:
                    print(f"median: {statistics.median(src_rates):.0f} msgs/s (smtp-source)")
        finally:
            if srv is not None:
                srv.stop()


if __name__ == "__main__":
    main()
