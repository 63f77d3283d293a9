"""dovecot-uidlist parsing and writing, dot-locks and UIDVALIDITY allocation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.locking import DotLock
from mailsuite.storage.uidlist import Uidlist, allocate_uidvalidity

DOVECOT = (
    "3 V1795791019 N1 G81c66c06a998096b4922000083ecc375\n"
    "1 :1795791017.M110733P8777.vm,S=10,W=10\n"
    "4 W1280 G0123 :1795791018.M1P1.vm\n"
)


def test_parse_dovecot_file(tmp_path: Path) -> None:
    (tmp_path / "dovecot-uidlist").write_text(DOVECOT)
    ul = Uidlist(tmp_path)
    assert ul.refresh()
    assert ul.uidvalidity == 1795791019
    assert ul.next_uid == 5  # max(N, last uid + 1)
    assert ul.by_base == {"1795791017.M110733P8777.vm,S=10,W=10": 1, "1795791018.M1P1.vm": 4}
    assert ul.guid == "81c66c06a998096b4922000083ecc375"
    assert not ul.refresh()  # unchanged


def test_rewrite_keeps_extensions_and_header(tmp_path: Path) -> None:
    (tmp_path / "dovecot-uidlist").write_text(DOVECOT)
    ul = Uidlist(tmp_path)
    ul.refresh()
    ul.rewrite()
    text = (tmp_path / "dovecot-uidlist").read_text()
    assert text.splitlines()[0] == "3 V1795791019 N5 G81c66c06a998096b4922000083ecc375"
    assert "4 W1280 G0123 :1795791018.M1P1.vm" in text


def test_incremental_read_and_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "dovecot-uidlist"
    path.write_text(DOVECOT)
    ul = Uidlist(tmp_path)
    ul.refresh()
    with open(path, "a") as f:
        f.write("5 :new1\n6 :half")  # interrupted append
    ul.refresh()
    assert ul.by_base["new1"] == 5
    assert "half" not in ul.by_base
    assert not ul.can_append()
    with open(path, "a") as f:
        f.write("way\n")
    ul.refresh()
    assert ul.by_base["halfway"] == 6
    assert ul.next_uid == 7


def test_replaced_file_is_read_in_full(tmp_path: Path) -> None:
    path = tmp_path / "dovecot-uidlist"
    path.write_text(DOVECOT)
    ul = Uidlist(tmp_path)
    ul.refresh()
    tmp = tmp_path / "x"
    tmp.write_text("3 V7 N10 Gab\n9 :only\n")
    os.replace(tmp, path)
    ul.refresh()
    assert ul.uidvalidity == 7 and ul.by_base == {"only": 9} and ul.next_uid == 10


def test_version1_is_read(tmp_path: Path) -> None:
    (tmp_path / "dovecot-uidlist").write_text("1 1234 8\n3 oldname\n")
    ul = Uidlist(tmp_path)
    ul.refresh()
    assert (ul.uidvalidity, ul.next_uid, ul.by_base) == (1234, 8, {"oldname": 3})


def test_duplicate_base_latest_wins(tmp_path: Path) -> None:
    (tmp_path / "dovecot-uidlist").write_text("3 V1 N1 Gx\n1 :a\n2 :a\n")
    ul = Uidlist(tmp_path)
    ul.refresh()
    assert ul.by_base == {"a": 2}


def test_dotlock_exclusive_and_stale(tmp_path: Path) -> None:
    path = tmp_path / "dovecot-uidlist.lock"
    with DotLock(path):
        with pytest.raises(MailError) as exc:
            DotLock(path, timeout=0.05).acquire()
        assert exc.value.kind is ErrorKind.IN_USE
    assert not path.exists()
    path.write_text("1:otherhost")
    past = time.time() - 121
    os.utime(path, (past, past))
    with DotLock(path, timeout=1):
        assert path.read_text().startswith(str(os.getpid()))


def test_dotlock_of_dead_local_process_is_stale(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = tmp_path / "x.lock"
    path.write_text(f"{proc.stdout.strip()}:{socket.gethostname()}")
    with DotLock(path, timeout=1):
        pass


def test_uidvalidity_allocation_increases(tmp_path: Path) -> None:
    now = 1_000_000.0
    values = [allocate_uidvalidity(tmp_path, now) for _ in range(3)]
    assert values == [1_000_000, 1_000_001, 1_000_002]
    assert (tmp_path / "dovecot-uidvalidity").read_text() == f"{values[-1]:08x}"
    assert (tmp_path / f"dovecot-uidvalidity.{values[-1]:08x}").exists()
