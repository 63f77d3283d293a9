"""Memory per idle IMAP connection, and how fast IDLE reports a delivery.

Usage::

    .venv/bin/python bench/imap_idle.py [--connections 1000] [--accounts 20]
        [--messages 100] [--idle-poll SECONDS] [--deliveries 3]

Starts ``twistd -n mailsuite`` (tests/harness.py) with connection limits
above ``--connections`` and cheap argon2 parameters (so creating the
accounts is quick; logins are cached anyway), ``--accounts`` accounts with
``--messages`` messages each.  Raises RLIMIT_NOFILE (the server inherits
it).  Then:

1. warms the server up (one LOGIN + SELECT + LOGOUT per account) and reads
   its VmRSS from /proc/PID/status;
2. opens ``--connections`` connections (accounts round-robin), each doing
   LOGIN, SELECT INBOX, IDLE, and reads VmRSS again after a short pause;
   prints KiB per idle connection and the extrapolation to 10,000;
3. measures the server's CPU use while they all idle (idle polling);
4. with all of them idle, a watcher connection IDLEs too and
   ``python -m mailsuite.admin.cli deliver`` (a separate process, like an
   MTA calling the LDA) delivers a message to the watcher's account; prints
   how long after the deliver process exited the watcher saw ``* n EXISTS``
   (the target is under 1 s).

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from common import (  # noqa: E402
    PASSWORD,
    ImapClient,
    build_maildir,
    link_maildir,
    make_messages,
    on_sigterm_exit,
    vm_rss_kib,
)

from tests.harness import ServerProcess, subprocess_env  # noqa: E402

DOMAIN = "idle.test"
MESSAGE = (
    "From: Sender <sender@example.org>\r\nTo: idle0@idle.test\r\n"
    "Subject: wake up\r\nMessage-ID: <wake-{n}@example.org>\r\n\r\nNew mail.\r\n"
)


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(max(soft, need), hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_idle(port: int, user: str) -> ImapClient:
    c = ImapClient(port)
    c.login(user)
    c.command("SELECT INBOX")
    c.send_raw(b"i1 IDLE\r\n")
    line = c.read_line()
    if not line.startswith(b"+"):
        raise RuntimeError(f"IDLE refused: {line[:200]!r}")
    return c


def wait_exists(c: ImapClient, timeout: float) -> float | None:
    """Seconds until an ``* n EXISTS`` line arrives (None: not within ``timeout``)."""
    start = time.perf_counter()
    deadline = start + timeout
    poller = select.poll()  # select() cannot watch descriptors above 1023
    poller.register(c.sock, select.POLLIN)
    while time.perf_counter() < deadline:
        while b"\r\n" in c.buf:
            line = c.read_line()
            if line.startswith(b"* ") and line.endswith(b" EXISTS"):
                return time.perf_counter() - start
        left_ms = max(0, int((deadline - time.perf_counter()) * 1000))
        if poller.poll(left_ms):
            c._recv()
    return None


def deliver(config: Path, user: str, n: int) -> float:
    """Run the admin CLI's deliver in its own process; returns its wall time."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mailsuite.admin.cli", "-c", str(config), "deliver", user],
        input=MESSAGE.format(n=n).encode(),
        env=subprocess_env(),
        check=True,
    )
    return time.perf_counter() - t


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connections", type=int, default=1000, help="idle connections (<= 10000)")
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--messages", type=int, default=100, help="messages per account")
    ap.add_argument("--idle-poll", type=float, help="imap.idle_poll_interval for the server")
    ap.add_argument("--deliveries", type=int, default=3)
    ap.add_argument("--cpu-window", type=float, default=10.0, help="seconds of idle CPU")
    ap.add_argument("--workers", type=int, default=16, help="client threads opening connections")
    args = ap.parse_args()
    args.connections = max(1, min(args.connections, 10_000))
    return args


def main() -> int:
    args = parse_args()
    limit = args.connections + 200
    nofile = raise_nofile(args.connections + 500)
    users = [f"idle{i}@{DOMAIN}" for i in range(args.accounts)]
    config = {
        "auth": {
            "allow_plaintext": True,
            "argon2_time_cost": 1,
            "argon2_memory_cost": 1024,
            "argon2_parallelism": 1,
        },
        "limits": {"max_connections": limit, "max_connections_per_ip": limit},
    }
    if args.idle_poll:
        config["imap"] = {"idle_poll_interval": args.idle_poll}
    with tempfile.TemporaryDirectory(prefix="idlebench") as tmpname:
        tmp = Path(tmpname)
        (tmp / "ms").mkdir()
        srv = ServerProcess(tmp / "ms", config, roles=("imap",))
        srv.admin("domain", "add", DOMAIN)
        build_maildir(tmp / "template", make_messages(args.messages, seed=9))
        for user in users:
            code, out = srv.admin("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
            if code:
                raise RuntimeError(f"user add {user}: {out}")
            link_maildir(tmp / "template", srv.maildir / DOMAIN / user.split("@")[0])
        srv.start()
        try:
            assert srv.proc is not None
            run(args, srv, srv.proc.pid, users, nofile)
        except Exception:
            print("server log (tail):\n" + srv.log()[-3000:], file=sys.stderr)
            raise
        finally:
            srv.stop()
    return 0


def run(
    args: argparse.Namespace, srv: ServerProcess, pid: int, users: list[str], nofile: int
) -> None:
    port = srv.ports["imap"]
    for user in users:  # warm: auth cache, mailbox index
        c = ImapClient(port)
        c.login(user)
        c.command("SELECT INBOX")
        c.close()
    time.sleep(1.0)
    before = vm_rss_kib(pid)
    k = args.connections
    print(
        f"server pid {pid}, RLIMIT_NOFILE {nofile}; {len(users)} accounts x"
        f" {args.messages} messages; VmRSS after warm-up {before / 1024:.1f} MiB"
    )
    t = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        conns = list(pool.map(lambda i: open_idle(port, users[i % len(users)]), range(k)))
    opened = time.perf_counter() - t
    time.sleep(2.0)
    after = vm_rss_kib(pid)
    per = (after - before) / k
    print(
        f"opened {k} IDLE connections (LOGIN+SELECT+IDLE) in {opened:.1f} s"
        f" ({k / opened:,.0f}/s with {args.workers} client threads)"
    )
    print(
        f"VmRSS with {k} idle: {after / 1024:.1f} MiB; {per:.1f} KiB per idle connection;"
        f" extrapolated to 10,000: {(before + per * 10_000) / 1024:.0f} MiB"
        f" (target < 1 GB)"
    )
    c0 = cpu_seconds(pid)
    time.sleep(args.cpu_window)
    busy = (cpu_seconds(pid) - c0) / args.cpu_window
    print(f"server CPU while {k} connections idle: {100 * busy:.1f} % of one core")
    watcher = open_idle(port, users[0])
    for n in range(args.deliveries):
        took = deliver(srv.config_path, users[0], n)
        seen = wait_exists(watcher, 15.0)
        shown = "not within 15 s" if seen is None else f"{seen * 1000:.0f} ms"
        print(
            f"delivery {n + 1}: admin deliver process {took * 1000:.0f} ms; EXISTS"
            f" after it exited: {shown}"
        )
    alive = sum(1 for c in conns if c.sock.fileno() >= 0)
    for c in [*conns, watcher]:
        c.sock.close()
    print(f"closed {alive + 1} connections")


if __name__ == "__main__":
    on_sigterm_exit()
    sys.exit(main())
