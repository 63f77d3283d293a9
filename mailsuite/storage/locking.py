"""Dot-lock files created with ``O_EXCL`` (NFS-safe on NFSv3+, no flock).

Used for ``dovecot-uidlist.lock``, ``dovecot-keywords.lock`` and
``subscriptions.lock`` exactly as Dovecot uses them, so Dovecot and mailsuite
exclude each other.  A lock is stale when its mtime is older than
``stale_after`` seconds (120 s like Dovecot's uidlist lock), or at once when
it names a process on this host that no longer exists (a killed writer),
or after 10 s when it names no process at all (killed before writing it).
The lock file holds ``<pid>:<host>``.

With ``template_dir`` the lock is taken by hard-linking a per-process file
(``<template_dir>/<lock name>.<host>.<pid>``, written once, its mtime
refreshed before each attempt) to the lock name instead of creating a new
file: the same lock for every other process (content, mtime, ``O_EXCL``
semantics of ``link``), but no inode is allocated per lock -- on ext4 that
allocation dominated a STORE's system time.  Only for mailsuite-private
locks (the modseq lock); the template is left for the 36-hour ``tmp/``
cleanup when the process ends.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.fsutil import write_all

STALE_AFTER = 120.0
EMPTY_STALE_AFTER = 10.0


class DotLock:
    """``with DotLock(path):`` holds ``path`` (the ``.lock`` file itself).

    Raises ``MailError(IN_USE)`` when the lock cannot be taken within
    ``timeout`` seconds, ``MailError(NONEXISTENT)`` when the directory is gone.
    Not reentrant.
    """

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = STALE_AFTER + 5,
        stale_after: float = STALE_AFTER,
        clock: Callable[[], float] = time.time,
        template_dir: Path | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.stale_after = stale_after
        self._clock = clock
        self._held = False
        self._host = socket.gethostname()
        self._template_dir = template_dir

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        content = f"{os.getpid()}:{self._host}".encode()
        while True:
            try:
                if self._template_dir is None or not self._link(content):
                    self._create(content)
            except FileExistsError:
                if self._break_if_stale():
                    continue
            except FileNotFoundError:
                raise MailError(ErrorKind.NONEXISTENT, detail=str(self.path.parent)) from None
            else:
                self._held = True
                return
            if time.monotonic() >= deadline:
                raise MailError(ErrorKind.IN_USE, detail=f"lock timeout {self.path}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _create(self, content: bytes) -> None:
        _write_file(self.path, os.O_EXCL, content)

    def _link(self, content: bytes) -> bool:
        """Take the lock as a hard link of this process's template; False
        if no template can be made (then :meth:`_create` takes it)."""
        assert self._template_dir is not None
        template = f"{self._template_dir}/{self.path.name}.{self._host}.{os.getpid()}"
        for _attempt in range(2):
            try:
                os.utime(template)  # the lock's mtime: taken now
            except FileNotFoundError:
                try:
                    _write_file(template, os.O_TRUNC, content)
                except OSError:
                    return False
            try:
                os.link(template, self.path)  # FileExistsError: held
                return True
            except FileNotFoundError:
                if not os.path.isdir(self.path.parent):
                    raise
                continue  # the template went away meanwhile (tmp/ cleanup)
        return False

    def _break_if_stale(self) -> bool:
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                owner = f.read(256).decode("ascii", "replace")
        except FileNotFoundError:
            return True
        age = self._clock() - st.st_mtime
        pid_s, _, host = owner.partition(":")
        stale = age > self.stale_after
        if not stale and not pid_s.isdigit():
            # The owner writes its pid right after creating the file; an empty
            # lock that stays empty belongs to a writer killed in between.
            stale = age > EMPTY_STALE_AFTER
        if not stale:
            stale = host == self._host and pid_s.isdigit() and not _alive(int(pid_s))
        if not stale:
            return False
        try:
            # Only remove the lock we judged (same inode), not a fresh one.
            if os.stat(self.path).st_ino == st.st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        return True

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> DotLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def _write_file(path: str | Path, mode: int, content: bytes) -> None:
    """Create ``path`` (``mode``: ``O_EXCL`` or ``O_TRUNC``) holding ``content``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    try:
        write_all(fd, content)
    finally:
        os.close(fd)
