"""IMAP session speed on a large mailbox.  Prints figures, asserts nothing.

    .venv/bin/python bench/imap.py [--messages N]

Builds a Maildir of N small messages (written straight into ``new/``, then
one sync assigns UIDs), and drives one :class:`IMAPSession` over a
StringTransport with the inline runner, so the figures are the CPU cost of
our protocol, storage and MIME code per command (no network, no threads).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.imap.support import USER, Client, add_user, make_context

BODY = (
    b"From: a@example.test\r\nTo: b@example.test\r\nSubject: message %d\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <%d@example.test>\r\n\r\n"
    b"Body of message %d, some words to search for.\r\n"
)


def build(tmp: Path, n: int) -> Client:
    ctx = make_context(tmp)
    add_user(ctx)
    account = ctx.store.account(USER)
    account.ensure_created()
    new = ctx.store.account_path(USER) / "new"  # type: ignore[attr-defined]
    for i in range(n):
        (new / f"{1700000000 + i}.M{i}P1.bench").write_bytes(BODY % (i, i, i))
    box = account.open("INBOX")
    box.sync()
    c = Client(ctx)
    c.login()
    return c


def timed(c: Client, label: str, command: str) -> None:
    start = time.perf_counter()
    out = c.cmd(command)
    elapsed = time.perf_counter() - start
    tagged = c.tagged(out).decode()[:40]
    print(f"{label:38s} {elapsed * 1000:9.1f} ms  {len(out) / 1024:9.0f} KiB  {tagged}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        c = build(Path(d), args.messages)
        print(
            f"built {args.messages} messages in {time.perf_counter() - start:.1f} s "
            f"(pid {os.getpid()})"
        )
        timed(c, "SELECT INBOX", "SELECT INBOX")
        timed(c, "FETCH 1:* (UID FLAGS RFC822.SIZE)", "FETCH 1:* (UID FLAGS RFC822.SIZE)")
        timed(c, "FETCH 1:* ENVELOPE (cold index)", "FETCH 1:* ENVELOPE")
        timed(c, "FETCH 1:* ENVELOPE (warm index)", "FETCH 1:* ENVELOPE")
        timed(c, "FETCH 1:1000 BODY.PEEK[]", "FETCH 1:1000 BODY.PEEK[]")
        timed(c, "UID SEARCH UNSEEN", "UID SEARCH UNSEEN")
        timed(c, "SEARCH SUBJECT 'message 1999'", 'SEARCH SUBJECT "message 1999"')
        timed(c, "SEARCH BODY words", "SEARCH BODY words")
        timed(c, "STORE 1:* +FLAGS.SILENT (\\Flagged)", "STORE 1:* +FLAGS.SILENT (\\Flagged)")
        ranges = ",".join(f"{i}:{i + 1}" for i in range(1, 32000, 4))
        c.proto.max_line_length = 1 << 20
        timed(c, "UID FETCH <8000 ranges> (FLAGS)", f"UID FETCH {ranges} (FLAGS)")
        timed(c, "NOOP", "NOOP")


if __name__ == "__main__":
    main()
