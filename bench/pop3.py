"""POP3 download speed: N concurrent clients doing STAT, UIDL and RETR of every message.

Usage::

    .venv/bin/python bench/pop3.py [--clients 8] [--messages 200] [--size 20000]
                                   [--rounds 5] [--no-dovecot]

Starts the real ``twistd mailsuite`` (tests/harness.py) with a POP3
listener on loopback, one account per client, each holding the same
generated messages (sizes spread around ``--size``, some lines starting
with "." to exercise the stuffing).  Each client is its own process (so the
client side is not one Python thread): it logs in with USER/PASS, sends
STAT, UIDL, RETR 1..n and QUIT.  A round's figure is messages (and bytes)
retrieved by all clients divided by the wall time of the round; one warm-up
round is not counted; the median of ``--rounds`` is printed.

If Debian's Dovecot is installed (``apt-get install dovecot-pop3d``), a
private Dovecot instance (config, sockets, logs in a temporary directory;
passwd-file with plaintext passwords; no TLS on either side) serves a copy
of the same maildirs on another loopback port, rounds alternate between the
two servers, and the ratio of the medians is printed.  Prints figures,
asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from common import DOVECOT, PASSWORD, Dovecot  # noqa: E402

from tests.harness import ServerProcess  # noqa: E402


# -- the client ------------------------------------------------------------------
class Client:
    """A minimal, fast POP3 client on a raw socket (no pipelining)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self._line()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._recv()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if not line.startswith(b"+OK"):
            raise RuntimeError(f"server said {line[:200]!r}")
        return line

    def _recv(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            raise RuntimeError("connection closed")
        self.buf += data

    def cmd(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self._line()

    def multi(self, line: str) -> int:
        """Send a command with a multi-line answer; returns the body's size."""
        self.cmd(line)
        while not (self.buf.endswith(b"\r\n.\r\n") or self.buf == b".\r\n"):
            self._recv()
        size = len(self.buf)
        self.buf = b""
        return size

    def close(self) -> None:
        self.cmd("QUIT")
        self.sock.close()


def run_client(port: int, user: str, start: Any, out: Any) -> None:
    start.wait()
    c = Client(port)
    c.cmd(f"USER {user}")
    c.cmd(f"PASS {PASSWORD}")
    count = int(c.cmd("STAT").split()[1])
    c.multi("UIDL")
    total = 0
    for n in range(1, count + 1):
        total += c.multi(f"RETR {n}")
    c.close()
    out.put((count, total))


def run_round(port: int, users: list[str]) -> tuple[float, float]:
    """(messages/s, MB/s) for all clients at once."""
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=run_client, args=(port, u, start, out)) for u in users]
    for p in procs:
        p.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    messages = sum(r[0] for r in results)
    octets = sum(r[1] for r in results)
    return messages / elapsed, octets / elapsed / 1e6


# -- the messages ------------------------------------------------------------------
def make_messages(count: int, size: int) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        target = max(200, int(rng.expovariate(1 / size)))
        lines = [b"From: bench@bench.test", b"To: user@bench.test", b"Subject: message %d" % i]
        lines += [b"Message-ID: <%d@bench.test>" % i, b""]
        length = sum(len(x) + 2 for x in lines)
        while length < target:
            word = b"." if rng.random() < 0.02 else b""
            line = word + bytes(
                rng.choice(b"abcdefghij klmnop") for _ in range(rng.randint(0, 76))
            )
            lines.append(line)
            length += len(line) + 2
        out.append(b"\r\n".join(lines) + b"\r\n")
    return out


def populate(maildir: Path, users: list[str], messages: list[bytes]) -> None:
    import io

    from mailsuite.storage.store import MaildirStore

    store = MaildirStore(maildir)
    for user in users:
        account = store.account(user)
        account.ensure_created()
        box = account.open("INBOX")
        for raw in messages:
            box.append(io.BytesIO(raw))


# -- Dovecot -------------------------------------------------------------------------
def dovecot_copy(tmp: Path, maildir: Path) -> Path:
    """A copy of the Maildirs owned by nobody, for Dovecot's mail processes."""
    mail = tmp / "dovecot-mail"
    shutil.copytree(maildir, mail)
    for path in [mail, *mail.rglob("*")]:
        os.chown(path, 65534, 65534)
    return mail


# -- main ------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--size", type=int, default=20000, help="mean message size in bytes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument(
        "--workers", type=int, default=0, help="server.workers (0: one per core, the default)"
    )
    args = ap.parse_args()

    users = [f"bench{i}@bench.test" for i in range(args.clients)]
    messages = make_messages(args.messages, args.size)
    mean = sum(map(len, messages)) / len(messages)
    with tempfile.TemporaryDirectory(prefix="pop3bench") as tmpname:
        tmp = Path(tmpname)
        os.chmod(tmp, 0o755)  # Dovecot's mail processes run as nobody
        (tmp / "ms").mkdir()
        srv = ServerProcess(
            tmp / "ms",
            {"server": {"workers": args.workers}, "auth": {"allow_plaintext": True}},
            roles=("pop3",),
        )
        srv.start()
        dovecot: Dovecot | None = None
        try:
            for user in users:
                srv.add_user(user, PASSWORD)
            populate(srv.maildir, users, messages)
            servers: dict[str, int] = {"mailsuite": srv.ports["pop3"]}
            if not args.no_dovecot and DOVECOT.exists() and os.geteuid() != 0:
                print("the Dovecot comparison runs Dovecot as root (its mail user is nobody)")
            elif not args.no_dovecot and DOVECOT.exists():
                dovecot = Dovecot(tmp, dovecot_copy(tmp, srv.maildir), users, protocol="pop3")
                dovecot.start()
                servers[f"dovecot {dovecot.version()}"] = dovecot.port
            elif not args.no_dovecot:
                print("dovecot not installed (apt-get install dovecot-pop3d): mailsuite only")
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
            for port in servers.values():
                run_round(port, users)  # warm-up: auth cache, indexes, page cache
            for _ in range(args.rounds):
                for name, port in servers.items():
                    figures[name].append(run_round(port, users))
        finally:
            srv.stop()
            if dovecot is not None:
                dovecot.stop()
    print(
        f"{args.clients} clients x {args.messages} messages (mean {mean / 1024:.1f} KiB),"
        f" STAT+UIDL+RETR all, median of {args.rounds} rounds:"
    )
    medians = {}
    for name, rows in figures.items():
        msgs = statistics.median(r[0] for r in rows)
        mbs = statistics.median(r[1] for r in rows)
        medians[name] = (msgs, mbs)
        print(f"  {name:<22} {msgs:10,.0f} messages/s  {mbs:8.1f} MB/s")
    if len(medians) == 2:
        (ours, theirs) = medians.values()
        print(
            f"  ratio mailsuite/dovecot: {ours[0] / theirs[0]:.2f} (messages/s),"
            f" {ours[1] / theirs[1]:.2f} (MB/s)"
        )


if __name__ == "__main__":
    main()
