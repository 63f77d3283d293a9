"""IMAP speed against the real server, and against Dovecot on the same mail.

Usage::

    .venv/bin/python bench/imap.py [--messages 500] [--clients 8] [--rounds 5]
        [--flags-messages 10000] [--select-messages 100000] [--repeat 5]
        [--shared] [--no-dovecot] [--no-big] [--py-spy FILE] [--quick]

Builds deterministic Maildirs (bench/common.py: real test messages mixed
with synthetic 2-20 KiB ones, flags in the names), starts ``twistd -n
mailsuite`` (tests/harness.py, plain LOGIN allowed on the non-TLS port)
and, when Debian's Dovecot is installed (``apt-get install
dovecot-imapd``), a private Dovecot on another loopback port serving
hard-linked copies of the same Maildirs.  Both are driven by the same
minimal client (one command at a time, no pipelining, TCP_NODELAY).

1. Mixed workload: ``--clients`` processes at once, each on its own
   account (``--shared``: all on one), doing LOGIN, SELECT, FETCH 1:*
   (FLAGS), UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT
   DATE)]), FETCH n BODY.PEEK[] for every message, SEARCH FROM / SUBJECT /
   UNSEEN / TEXT, STORE +FLAGS and -FLAGS (\\Flagged) on 50 messages,
   LOGOUT.  One warm-up round per server, then ``--rounds`` rounds
   alternating between the servers.  Prints the median commands/s,
   messages/s (bodies fetched) and MB/s, the ratio, and p50/p90/p99
   latency per command over all measured rounds.
2. FETCH 1:* (FLAGS) on a ``--flags-messages`` folder: median of
   ``--repeat`` runs in one session after one warm-up run.
3. SELECT of a ``--select-messages`` folder: the first (cold) SELECT, then
   the median of ``--repeat`` warm ones, each in a new session.

``--py-spy FILE`` samples our server with py-spy (``pip install py-spy``)
while it is measured: the mixed rounds into FILE, the FLAGS and SELECT
measurements into FILE with the suffix ``.big.txt`` (collapsed stacks), and
prints the functions with the most samples; with ``--gil`` only threads
holding the GIL are sampled (the CPU profile of a GIL-bound server).  Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from common import (  # noqa: E402
    PASSWORD,
    Dovecot,
    ImapClient,
    ImapError,
    build_maildir,
    chown_tree,
    link_maildir,
    make_messages,
    on_sigterm_exit,
    percentile,
    tree_cpu_seconds,
)

from tests.harness import ServerProcess  # noqa: E402

DOMAIN = "bench.test"
SEARCHES = [
    ("SEARCH FROM", 'SEARCH FROM "alice"'),
    ("SEARCH SUBJECT", 'SEARCH SUBJECT "invoice"'),
    ("SEARCH UNSEEN", "SEARCH UNSEEN"),
    ("SEARCH TEXT", 'SEARCH TEXT "zeppelin"'),
]
HEADERS = "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"


# -- the mixed workload ------------------------------------------------------------
def session(
    port: int, user: str, count: int
) -> tuple[list[tuple[str, float]], int, int, list[str]]:
    """One client's mixed session: (label, seconds) pairs, bodies, body bytes, and
    one ``label: reply`` per command that was not answered OK (BAD aborts)."""
    times: list[tuple[str, float]] = []
    failed: list[str] = []
    clock = time.perf_counter

    def run(label: str, text: str) -> int:
        t = clock()
        line, _, size = c.command(text, check=False)
        times.append((label, clock() - t))
        status = line.split(b" ", 2)[1:2]
        if status != [b"OK"]:
            if status != [b"NO"]:
                raise ImapError(f"{text[:60]!r} -> {line[:200]!r}")
            failed.append(f"{label}: {line.split(b' ', 1)[1][:80].decode(errors='replace')}")
        return size

    t = clock()
    c = ImapClient(port)
    times.append(("CONNECT", clock() - t))
    run("LOGIN", f'LOGIN "{user}" "{PASSWORD}"')
    run("SELECT", "SELECT INBOX")
    run("FETCH 1:* FLAGS", "FETCH 1:* (FLAGS)")
    run("UID FETCH headers", HEADERS)
    octets = 0
    for n in range(1, count + 1):
        octets += run("FETCH n BODY[]", f"FETCH {n} (BODY.PEEK[])")
    for label, text in SEARCHES:
        run(label, text)
    span = f"1:{min(50, count)}"
    run("STORE +FLAGS", f"STORE {span} +FLAGS (\\Flagged)")
    run("STORE -FLAGS", f"STORE {span} -FLAGS (\\Flagged)")
    t = clock()
    c.command("LOGOUT", check=False)
    times.append(("LOGOUT", clock() - t))
    c.sock.close()
    return times, count, octets, failed


def _client(port: int, user: str, count: int, start: Any, out: Any) -> None:
    start.wait()
    try:
        out.put(session(port, user, count))
    except Exception as e:  # reported by the parent
        out.put(e)


class Round:
    def __init__(self, elapsed: float, results: list[Any], cpu: float) -> None:
        self.elapsed = elapsed
        self.cpu = cpu
        self.times = [t for r in results for t in r[0]]
        self.commands = len(self.times)
        self.bodies = sum(r[1] for r in results)
        self.octets = sum(r[2] for r in results)
        self.failed = [f for r in results for f in r[3]]


def run_round(port: int, users: list[str], count: int, server_pid: int = 0) -> Round:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, u, count, start, out)) for u in users]
    for p in procs:
        p.start()
    time.sleep(0.3)
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=1800) for _ in procs]
    elapsed = time.perf_counter() - t0
    cpu = tree_cpu_seconds(server_pid) - cpu0 if server_pid else 0.0
    for p in procs:
        p.join()
    for r in results:
        if isinstance(r, Exception):
            raise r
    return Round(elapsed, results, cpu)


def report_mixed(rounds: dict[str, list[Round]], args: argparse.Namespace, mean: float) -> None:
    who = "one shared account" if args.shared else "one account each"
    print(
        f"\n== mixed workload: {args.clients} clients ({who}) x {args.messages} messages"
        f" (mean {mean / 1024:.1f} KiB), median of {args.rounds} rounds"
    )
    print(
        f"  {'server':<20} {'commands/s':>11} {'messages/s':>11} {'MB/s':>8} {'round s':>8}"
        f" {'server CPU s':>13} {'CPU ms/cmd':>11}"
    )
    medians: dict[str, tuple[float, float, float]] = {}
    for name, rows in rounds.items():
        cps = statistics.median(r.commands / r.elapsed for r in rows)
        mps = statistics.median(r.bodies / r.elapsed for r in rows)
        mbs = statistics.median(r.octets / r.elapsed / 1e6 for r in rows)
        secs = statistics.median(r.elapsed for r in rows)
        cpu = statistics.median(r.cpu for r in rows)
        per = statistics.median(1000 * r.cpu / r.commands for r in rows)
        medians[name] = (cps, mps, mbs)
        print(
            f"  {name:<20} {cps:11,.0f} {mps:11,.0f} {mbs:8.1f} {secs:8.2f}"
            f" {cpu:13.2f} {per:11.3f}"
        )
    if len(medians) == 2:
        ours, theirs = medians.values()
        print(
            f"  ratio mailsuite/dovecot: {ours[0] / theirs[0]:.2f} (commands/s),"
            f" {ours[1] / theirs[1]:.2f} (messages/s)"
        )
    for name, rows in rounds.items():
        failed = Counter(f for r in rows for f in r.failed)
        for text, n in failed.most_common():
            print(f"  {name}: {n} x NO  {text}")
    print("  latency per command, ms p50 / p90 / p99 (all measured rounds, all clients):")
    names = list(rounds)
    print(f"  {'command':<20}" + "".join(f" {n:>26}" for n in names))
    labels: list[str] = []
    for label, _ in rounds[names[0]][0].times:
        if label not in labels:
            labels.append(label)
    for label in labels:
        cells = []
        for name in names:
            values = sorted(s for r in rounds[name] for lab, s in r.times if lab == label)
            p = [percentile(values, q) * 1000 for q in (50, 90, 99)]
            cells.append(f"{p[0]:8.2f} /{p[1]:8.2f} /{p[2]:8.2f}")
        print(f"  {label:<20}" + "".join(f" {c:>26}" for c in cells))


# -- single-session measurements --------------------------------------------------
def fetch_flags(port: int, user: str, repeat: int) -> tuple[float, list[float], int]:
    """(first SELECT seconds, FETCH 1:* (FLAGS) seconds per run, responses)."""
    c = ImapClient(port)
    c.login(user)
    t = time.perf_counter()
    c.command("SELECT INBOX")
    first = time.perf_counter() - t
    untagged = c.command("FETCH 1:* (FLAGS)")[1]  # warm-up
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        c.command("FETCH 1:* (FLAGS)")
        runs.append(time.perf_counter() - t)
    c.close()
    return first, runs, untagged


def select_times(port: int, user: str, repeat: int) -> tuple[float, list[float]]:
    """(cold SELECT seconds, warm SELECT seconds per new session)."""
    out = []
    for _ in range(repeat + 1):
        c = ImapClient(port)
        c.login(user)
        t = time.perf_counter()
        c.command("SELECT INBOX")
        out.append(time.perf_counter() - t)
        c.close()
    return out[0], out[1:]


# -- setup ---------------------------------------------------------------------------
def account_dir(root: Path, user: str) -> Path:
    local, _, domain = user.rpartition("@")
    return root / domain / local


class PySpy:
    """py-spy sampling a process into a collapsed-stack file (``--format raw``)."""

    def __init__(self, pid: int, out: Path, gil: bool = False) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [
                str(exe if exe.exists() else "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--threads",
                *(["--gil"] if gil else []),
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        summarize_stacks(self.out)


def summarize_stacks(path: Path, top: int = 20) -> None:
    """Print the functions with the most samples: self (leaf) and inclusive."""
    if not path.exists():
        print(f"  py-spy wrote no {path}")
        return
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        head = stack.split(";", 1)[0]
        threads["reactor" if "MainThread" in head else "pool threads"] += count
        frames = [f for f in stack.split(";") if not f.startswith(("thread", "process"))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(f"\n== py-spy: {total} samples of our server (all threads) -> {path}")
    print("  " + ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in threads.items()))
    print("  self time (leaf frames):")
    for f, n in own.most_common(top):
        print(f"  {100 * n / total:6.1f}%  {f}")
    print("  inclusive, mailsuite code only:")
    shown = 0
    for f, n in incl.most_common():
        if "mailsuite/" in f:
            print(f"  {100 * n / total:6.1f}%  {f}")
            shown += 1
            if shown >= top:
                break


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=500, help="messages per mixed mailbox")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--flags-messages", type=int, default=10_000)
    ap.add_argument("--select-messages", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5, help="runs of the single measurements")
    ap.add_argument("--shared", action="store_true", help="all clients on one account")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument(
        "--workers", type=int, default=0, help="server.workers (0: one per core, the default)"
    )
    ap.add_argument("--no-big", action="store_true", help="skip the FLAGS and SELECT folders")
    ap.add_argument("--py-spy", type=Path, metavar="FILE", help="profile our server")
    ap.add_argument("--gil", action="store_true", help="py-spy: only threads holding the GIL")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.messages = min(args.messages, 40)
        args.clients = min(args.clients, 2)
        args.rounds = 1
        args.flags_messages = min(args.flags_messages, 1000)
        args.select_messages = min(args.select_messages, 2000)
        args.repeat = min(args.repeat, 2)
    return args


def main() -> int:
    args = parse_args()
    use_dovecot = not args.no_dovecot and Dovecot.available()
    if not args.no_dovecot and not use_dovecot:
        print("Dovecot not installed (apt-get install dovecot-imapd): mailsuite only")
    users = [f"bench{i}@{DOMAIN}" for i in range(1 if args.shared else args.clients)]
    flags_user, select_user = f"flags@{DOMAIN}", f"select@{DOMAIN}"
    big = [] if args.no_big else [flags_user, select_user]
    with tempfile.TemporaryDirectory(prefix="imapbench") as tmpname:
        tmp = Path(tmpname)
        os.chmod(tmp, 0o755)  # Dovecot's mail processes run as nobody
        t0 = time.perf_counter()
        template = tmp / "template"
        build_maildir(template, make_messages(args.messages, seed=1))
        sizes = [p.stat().st_size for p in (template / "cur").iterdir()]
        if big:
            build_maildir(tmp / "flags", make_messages(args.flags_messages, seed=3), seed=4)
            build_maildir(tmp / "select", make_messages(args.select_messages, seed=5), seed=6)
        limit = 4 * args.clients + 50
        (tmp / "ms").mkdir()
        srv = ServerProcess(
            tmp / "ms",
            {
                "server": {"workers": args.workers},
                "auth": {"allow_plaintext": True},
                "limits": {"max_connections": limit, "max_connections_per_ip": limit},
            },
            roles=("imap",),
        )
        srv.admin("domain", "add", DOMAIN)
        for user in users + big:
            code, out = srv.admin("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
            if code:
                raise RuntimeError(f"user add {user}: {out}")
        dmail = tmp / "dovecot-mail"
        for root in [srv.maildir] + ([dmail] if use_dovecot else []):
            for user in users:
                link_maildir(template, account_dir(root, user))
            for user, src in zip(big, ("flags", "select"), strict=False):
                link_maildir(tmp / src, account_dir(root, user))
        shutil.rmtree(template)
        print(
            f"built {len(users)}x{args.messages} + {args.flags_messages if big else 0}"
            f" + {args.select_messages if big else 0} messages in"
            f" {time.perf_counter() - t0:.1f} s"
        )
        srv.start()
        dovecot = None
        try:
            servers = {"mailsuite": srv.ports["imap"]}
            if use_dovecot:
                chown_tree(dmail)
                dovecot = Dovecot(tmp, dmail, users + big).start()
                servers[f"dovecot {dovecot.version()}"] = dovecot.port
            run_all(args, srv, dovecot, servers, users, big, sum(sizes) / len(sizes))
        finally:
            srv.stop()
            if dovecot is not None:
                dovecot.stop()
    return 0


def run_all(
    args: argparse.Namespace,
    srv: ServerProcess,
    dovecot: Dovecot | None,
    servers: dict[str, int],
    users: list[str],
    big: list[str],
    mean: float,
) -> None:
    clients = users * args.clients if args.shared else users
    pid = srv.proc.pid if srv.proc else 0
    pids = {"mailsuite": pid}
    if dovecot is not None and dovecot.proc is not None:
        pids[next(n for n in servers if n != "mailsuite")] = dovecot.proc.pid
    if big:
        # The big folders first, while the machine's page cache is the same for both.
        spy = PySpy(pid, args.py_spy.with_suffix(".big.txt"), args.gil) if args.py_spy else None
        try:
            report_big(args, servers, big, spy)
        finally:
            if spy is not None:
                spy.stop()
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for name, port in servers.items():
        warm = run_round(port, clients, args.messages)  # warm-up: auth cache, indexes
        for text, n in Counter(warm.failed).most_common():
            print(f"  warm-up {name}: {n} x NO  {text}")
    spy = PySpy(pid, args.py_spy, args.gil) if args.py_spy else None
    try:
        for _ in range(args.rounds):
            for name, port in servers.items():
                with Sampling(spy, name):
                    rounds[name].append(run_round(port, clients, args.messages, pids[name]))
    finally:
        report_mixed(rounds, args, mean)
        if spy is not None:
            spy.stop()


class Sampling:
    """Let ``spy`` sample only while our server is measured (pauses py-spy otherwise)."""

    def __init__(self, spy: PySpy | None, server: str) -> None:
        self.pause = spy is not None and server != "mailsuite"
        self.pid = spy.proc.pid if spy is not None else 0

    def __enter__(self) -> None:
        if self.pause:
            os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        if self.pause:
            os.kill(self.pid, signal.SIGCONT)


def report_big(
    args: argparse.Namespace, servers: dict[str, int], big: list[str], spy: PySpy | None
) -> None:
    flags_user, select_user = big
    print(f"\n== FETCH 1:* (FLAGS), {args.flags_messages} messages, median of {args.repeat}")
    flags: dict[str, float] = {}
    for name, port in servers.items():
        with Sampling(spy, name):
            first, runs, untagged = fetch_flags(port, flags_user, args.repeat)
        flags[name] = statistics.median(runs)
        print(
            f"  {name:<20} {flags[name] * 1000:9.1f} ms  (min {min(runs) * 1000:.1f},"
            f" max {max(runs) * 1000:.1f}; {untagged} responses; first SELECT"
            f" {first * 1000:.0f} ms)"
        )
    if len(flags) == 2:
        ours, theirs = flags.values()
        print(f"  time ratio mailsuite/dovecot: {ours / theirs:.2f} (target <= 2)")
    print(f"\n== SELECT INBOX, {args.select_messages} messages, new session each time")
    for name, port in servers.items():
        with Sampling(spy, name):
            cold, warm = select_times(port, select_user, args.repeat)
        print(
            f"  {name:<20} warm median {statistics.median(warm) * 1000:9.1f} ms"
            f" (min {min(warm) * 1000:.1f}, max {max(warm) * 1000:.1f});"
            f" cold first SELECT {cold * 1000:.0f} ms"
        )


if __name__ == "__main__":
    on_sigterm_exit()
    sys.exit(main())
