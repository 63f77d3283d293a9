"""What the IMAP benchmarks share: a lean IMAP client, a Maildir builder, a private Dovecot.

Nothing here asserts; the benchmarks print figures.

* :class:`ImapClient` — one blocking socket, one command at a time (no
  pipelining), TCP_NODELAY, literals skipped by length.  The same client
  drives every server, so the client cost is the same on both sides.
* :func:`build_maildir` — a deterministic Maildir (seeded): real messages
  from ``shared/testdata/messages`` mixed with synthetic 2-20 KiB ones,
  written CRLF straight into ``cur/`` with ``,S=,W=`` sizes and flags in the
  name (no uidlist: each server assigns UIDs on its first SELECT).
* :func:`link_maildir` — a copy of a Maildir whose message files are hard
  links (message files are never rewritten in a Maildir) and whose metadata
  is copied, leaving out mailsuite's own index files.
* :class:`Dovecot` — Debian's Dovecot on a loopback port in a temporary
  directory (config, sockets, state and log there; passwd-file with
  plaintext passwords; no TLS), serving a Maildir tree laid out like ours.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO.parent / "shared" / "testdata" / "messages"
DOVECOT = Path("/usr/sbin/dovecot")
PASSWORD = "bench-password"
NOBODY = 65534


def on_sigterm_exit() -> None:
    """Turn SIGTERM into SystemExit, so servers and temporary files are cleaned up."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# -- statistics ------------------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def vm_rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid``, its live descendants and its reaped children."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, list[str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), fields)
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        if p not in stats:
            continue
        fields = stats[p][1]
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        todo.extend(c for c, (ppid, _) in stats.items() if ppid == p)
    return total / ticks


# -- the client --------------------------------------------------------------------
class ImapError(RuntimeError):
    pass


class ImapClient:
    """A minimal IMAP client: send one command, read up to its tagged reply.

    ``command()`` returns the tagged status line, the number of untagged
    responses and the number of bytes received.  Literals ``{n}`` are
    skipped by count, so message bodies never look like response lines.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 600) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.n = 0
        self.greeting = self._read(b"")[0]

    def _recv(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ImapError("connection closed by the server")
        self.buf += data

    def _read(self, tag: bytes) -> tuple[bytes, int, int]:
        """Read up to the line starting with ``tag`` (b"": the greeting or a ``+``)."""
        buf = self.buf
        pos = 0
        at_start = True
        untagged = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            while eol < 0:
                self._recv()
                eol = buf.find(b"\r\n", pos)
            if at_start:
                if buf.startswith(b"* ", pos):
                    untagged += 1
                    if not tag:
                        return self._take(pos, eol, untagged)
                elif buf.startswith(b"+", pos) or (tag and buf.startswith(tag + b" ", pos)):
                    return self._take(pos, eol, untagged)
            if buf[eol - 1] == 0x7D:  # "}": a literal follows this line
                lb = buf.rfind(b"{", pos, eol)
                digits = bytes(buf[lb + 1 : eol - 1]).rstrip(b"+")
                if lb >= 0 and digits.isdigit():
                    pos = eol + 2 + int(digits)
                    while len(buf) < pos:
                        self._recv()
                    at_start = False
                    continue
            pos = eol + 2
            at_start = True

    def _take(self, start: int, eol: int, untagged: int) -> tuple[bytes, int, int]:
        line = bytes(self.buf[start:eol])
        size = eol + 2
        del self.buf[:size]
        return line, untagged, size

    def command(self, text: str, check: bool = True) -> tuple[bytes, int, int]:
        self.n += 1
        tag = b"c%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        line, untagged, size = self._read(tag)
        if check and not line.startswith(tag + b" OK"):
            raise ImapError(f"{text[:60]!r} -> {line[:200]!r}")
        return line, untagged, size

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """The next response line (for IDLE); waits for it."""
        while b"\r\n" not in self.buf:
            self._recv()
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line

    def login(self, user: str, password: str = PASSWORD) -> None:
        self.command(f'LOGIN "{user}" "{password}"')

    def close(self) -> None:
        try:
            self.command("LOGOUT", check=False)
        except (OSError, ImapError):
            pass
        self.sock.close()


# -- the messages --------------------------------------------------------------------
NAMES = [
    ("Alice Archer", "alice"),
    ("Bob Baker", "bob"),
    ("Carol Cooper", "carol"),
    ("Dave Dyer", "dave"),
    ("Erin Easton", "erin"),
    ("Frank Fisher", "frank"),
    ("Grace Gardner", "grace"),
    ("Heidi Hunter", "heidi"),
    ("Ivan Ingram", "ivan"),
    ("Judy Joiner", "judy"),
]
_WORD_TEXT = (
    "the of and to in is for on that with as was at by this from are be or have an not "
    "meeting report budget project update review draft release schedule invoice order "
    "customer server network storage backup quarterly planning notes agenda summary "
    "deadline proposal contract shipping travel lunch team design test results"
)
WORDS = _WORD_TEXT.split()
RARE_WORD = "zeppelin"  # in about 1 % of synthetic bodies: SEARCH TEXT finds a few


def _line_pool(rng: random.Random, size: int = 400) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(size)]


def _synthetic(rng: random.Random, pool: list[str], i: int, when: float) -> bytes:
    name, local = rng.choice(NAMES)
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    head = (
        f"Return-Path: <{local}@example.org>\r\n"
        f"Received: from mx.example.org (mx.example.org [192.0.2.{i % 250 + 1}])\r\n"
        f"\tby mail.bench.test with ESMTP id {i:08x}; {date}\r\n"
        f"From: {name} <{local}@example.org>\r\n"
        f"To: Bench User <user@bench.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{i}.{rng.getrandbits(32):08x}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    target = rng.randint(2 * 1024, 20 * 1024) - len(head)
    lines = rng.choices(pool, k=max(1, target // 64))
    if rng.random() < 0.01:
        lines[rng.randrange(len(lines))] += " " + RARE_WORD
    return head + ("\r\n".join(lines) + "\r\n").encode()


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def real_messages(max_size: int = 256 * 1024) -> list[bytes]:
    """The real test messages up to ``max_size`` bytes, CRLF, in name order."""
    if not TESTDATA.is_dir():
        return []
    out = []
    for path in sorted(TESTDATA.glob("*.eml")):
        if 0 < path.stat().st_size <= max_size:
            out.append(_crlf(path.read_bytes()))
    return out


def make_messages(count: int, seed: int = 1, real_share: float = 0.15) -> Iterator[bytes]:
    """``count`` messages: about ``real_share`` real ones, the rest synthetic 2-20 KiB."""
    rng = random.Random(seed)
    pool = _line_pool(rng)
    real = real_messages()
    base = 1_700_000_000
    for i in range(count):
        if real and rng.random() < real_share:
            yield rng.choice(real)
        else:
            yield _synthetic(rng, pool, i, base + i * 600)


def build_maildir(folder: Path, messages: Iterable[bytes], seed: int = 2) -> int:
    """Write ``messages`` into a new Maildir at ``folder`` (``cur/`` with flags).

    About 60 % are \\Seen, 5 % \\Flagged, 3 % \\Answered; internal dates (mtime)
    rise ten minutes per message.  Returns the number written.
    """
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    cur = folder / "cur"
    count = 0
    for i, raw in enumerate(messages):
        flags = ""
        if rng.random() < 0.03:
            flags += "R"
        if rng.random() < 0.6:
            flags += "S"
        if rng.random() < 0.05:
            flags = "F" + flags
        when = 1_700_000_000 + i * 600
        name = f"{when}.M{i}P4242.bench.test,S={len(raw)},W={len(raw)}:2,{''.join(sorted(flags))}"
        path = cur / name
        with open(path, "wb") as f:
            f.write(raw)
        os.utime(path, (when, when))
        count += 1
    return count


def link_maildir(src: Path, dst: Path) -> None:
    """Copy the Maildir tree ``src`` to ``dst``: message files hard-linked, metadata copied.

    mailsuite's own ``mailsuite.*`` index files are left out.
    """
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        target = dst / rel
        target.mkdir(parents=True, exist_ok=True)
        in_msgdir = rel.name in ("cur", "new")
        for name in files:
            if name.startswith("mailsuite."):
                continue
            if in_msgdir:
                os.link(Path(root) / name, target / name)
            else:
                shutil.copy2(Path(root) / name, target / name)
        dirs.sort()


def chown_tree(root: Path, uid: int = NOBODY, gid: int = NOBODY) -> None:
    for dirpath, _dirs, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in filenames:
            os.chown(Path(dirpath) / name, uid, gid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- Dovecot ---------------------------------------------------------------------------
class Dovecot:
    """A private Dovecot (IMAP, or POP3 with ``protocol="pop3"``) on a loopback
    port, started and stopped by us.

    ``mail_root`` holds ``<domain>/<localpart>/`` Maildirs (chowned to nobody,
    as Dovecot's mail processes run as nobody here).
    """

    def __init__(
        self, tmp: Path, mail_root: Path, users: Iterable[str], protocol: str = "imap"
    ) -> None:
        self.dir = tmp / "dovecot"
        self.port = free_port()
        (self.dir / "run").mkdir(parents=True)
        (self.dir / "state").mkdir()
        (self.dir / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in users))
        self.conf = self.dir / "dovecot.conf"
        extra = "pop3_uidl_format = %08Xu%08Xv\n" if protocol == "pop3" else ""
        self.conf.write_text(
            f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = {protocol}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail_root}/%d/%n
mail_max_userip_connections = 20000
default_client_limit = 20000
default_vsz_limit = 1G
{extra}passdb {{
  driver = passwd-file
  args = username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={mail_root}/%d/%n
}}
service {protocol}-login {{
  inet_listener {protocol} {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener {protocol}s {{
    port = 0
  }}
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return DOVECOT.exists() and Path("/usr/lib/dovecot/imap").exists()

    def start(self) -> Dovecot:
        self.proc = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log = self.dir / "dovecot.log"
        raise RuntimeError("dovecot did not start:\n" + (log.read_text() if log.exists() else ""))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def version(self) -> str:
        out = subprocess.run([str(DOVECOT), "--version"], capture_output=True, text=True)
        return out.stdout.split()[0] if out.stdout else "?"
