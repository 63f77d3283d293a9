"""DotLock with ``template_dir``: taken by hard-linking a per-process
template (no inode allocated per lock), same semantics for everyone else."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.locking import DotLock


def test_lock_is_a_link_of_the_template(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    lock = tmp_path / "x.lock"
    with DotLock(lock, template_dir=tmp_path / "tmp"):
        template = tmp_path / "tmp" / f"x.lock.{socket.gethostname()}.{os.getpid()}"
        assert os.stat(lock).st_ino == os.stat(template).st_ino
        assert lock.read_bytes() == f"{os.getpid()}:{socket.gethostname()}".encode()
        with pytest.raises(MailError) as e:  # held: another taker waits and gives up
            DotLock(lock, timeout=0.05, template_dir=tmp_path / "tmp").acquire()
        assert e.value.kind is ErrorKind.IN_USE
        with pytest.raises(MailError):  # a plain O_EXCL taker too
            DotLock(lock, timeout=0.05).acquire()
    assert not lock.exists()
    assert template.exists()  # kept for the next lock of this process
    with DotLock(lock, template_dir=tmp_path / "tmp"):  # and used again
        assert os.stat(lock).st_ino == os.stat(template).st_ino


def test_a_dead_owners_link_is_broken(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    dead = tmp_path / "tmp" / "dead"
    dead.write_bytes(f"999999999:{socket.gethostname()}".encode())
    lock = tmp_path / "x.lock"
    os.link(dead, lock)
    with DotLock(lock, timeout=1, template_dir=tmp_path / "tmp"):
        assert lock.read_bytes().startswith(f"{os.getpid()}:".encode())


def test_without_a_template_directory_the_lock_is_created(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with DotLock(lock, template_dir=tmp_path / "missing"):
        assert lock.read_bytes() == f"{os.getpid()}:{socket.gethostname()}".encode()
        assert os.stat(lock).st_nlink == 1
    assert not lock.exists()


def test_missing_folder_is_nonexistent(tmp_path: Path) -> None:
    with pytest.raises(MailError) as e:
        DotLock(tmp_path / "gone" / "x.lock", template_dir=tmp_path).acquire()
    assert e.value.kind is ErrorKind.NONEXISTENT
