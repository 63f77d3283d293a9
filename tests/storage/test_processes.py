"""Several processes on one maildir: SIGKILL during delivery, concurrent syncs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailsuite.storage.flags import split_name
from mailsuite.storage.store import MaildirStore

REPO = Path(__file__).resolve().parents[2]

DELIVER_LOOP = r"""
import sys
from pathlib import Path
from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage.store import MaildirStore

root = Path(sys.argv[1])
store = MaildirStore(root)
agent = MaildirDeliveryAgent(store)
box = None
n = 0
body = b"0123456789abcdef" * 4096  # 64 KiB per chunk
while True:
    n += 1
    chunks = 1 + n % 5
    header = b"Subject: %d\r\nX-Chunks: %d\r\n\r\n" % (n, chunks)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    d.write(header)
    for _ in range(chunks):
        d.write(body)
    d.write(b"\r\nEND\r\n")
    d.commit({"bob@example.org": [LocalTarget("bob@example.org")]})
    if n % 3 == 0:
        box = box or store.account("bob@example.org").open("INBOX")
        box.sync()
        uids = list(box.uids())
        if uids:
            box.store_flags(uids[-1:], ["\\Seen"], "add")
"""

SYNC_LOOP = r"""
import json, os, sys
from pathlib import Path
from mailsuite.storage.store import MaildirStore

root, tag, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
box = MaildirStore(root).account("bob@example.org").open("INBOX")
seen = {}
for i in range(rounds):
    for j in range(3):
        name = f"{tag}-{i}-{j}"
        p = box.path / "tmp" / name
        p.write_bytes(b"Subject: x\r\n\r\n" + name.encode() + b"\r\n")
        os.rename(p, box.path / "new" / name)
    box.sync()
    for m, name in zip(box.uids(), box.messages()._files):
        seen[str(m)] = name.partition(":")[0]
print(json.dumps(seen))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


def check_complete(folder: Path) -> int:
    count = 0
    for sub in ("new", "cur"):
        for name in os.listdir(folder / sub):
            data = (folder / sub / name).read_bytes()
            chunks = int(data.split(b"X-Chunks: ")[1].split(b"\r\n")[0])
            assert data.endswith(b"\r\nEND\r\n"), name
            assert len(data.split(b"\r\n\r\n", 1)[1]) == chunks * 65536 + 7, name
            count += 1
    return count


def test_sigkill_never_leaves_partial_message(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    rng = random.Random(1234)
    total = 0
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", DELIVER_LOOP, str(root)], env=_env(), cwd=REPO
        )
        time.sleep(rng.uniform(0.6, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        folder = root / "example.org" / "bob"
        if not (folder / "cur").exists():
            continue
        total = check_complete(folder)
        box = MaildirStore(root).account("bob@example.org").open("INBOX")  # lock of the dead
        box.sync()  # process is broken at once; sync completes
        assert len(box.messages()) == total
        assert len(set(box.uids())) == total
    assert total > 0


def test_concurrent_syncs_never_share_a_uid(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    acct = MaildirStore(root).account("bob@example.org")
    acct.ensure_created()
    acct.open("INBOX")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SYNC_LOOP, str(root), tag, "40"],
            env=_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    views = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    merged: dict[str, str] = {}
    for view in views:
        for uid, base in view.items():
            assert merged.setdefault(uid, base) == base, f"UID {uid} given to two files"
    box = acct.open("INBOX")
    bases = [split_name(n)[0] for n in box.messages()._files]
    assert len(bases) == 3 * 40 * 3 == len(set(box.uids()))
    for uid, base in zip(box.uids(), bases, strict=True):
        assert merged.get(str(uid), base) == base
