"""Durable file-system primitives shared by the store and the delivery agent.

DESIGN.md §4.3: every write that matters is a temp file in the same directory,
fsync, rename, fsync of the directory.  :class:`DirSyncer` groups directory
fsyncs of concurrent writers without weakening any of them: a caller returns
only after an fsync that *started after* the caller's own rename completed.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from pathlib import Path
from typing import IO, Protocol

_counter = itertools.count(1)


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so that renames/links/unlinks inside it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> int:
    """Write all of ``data`` to ``fd`` (looping over short writes); returns
    its length.  Raises OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


class Transform(Protocol):
    """Rewrites a byte stream chunk by chunk (e.g. ``CrlfNormalizer``)."""

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def copy_durably(
    source: IO[bytes],
    path: str | Path,
    transform: Transform | None = None,
    chunk: int = 256 * 1024,
) -> int:
    """Copy ``source`` into the new file ``path`` (``O_EXCL``, mode 0600),
    through ``transform`` if given, and fsync it; returns the bytes written.
    On any failure the file is removed and the error raised (OSError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        while data := source.read(chunk):
            size += write_all(fd, transform.feed(data) if transform else data)
        if transform is not None:
            size += write_all(fd, transform.flush())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quiet(path)
        raise
    os.close(fd)
    return size


def stat_sig(path: str | Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime ns) of ``path``, None if it does not exist: a
    cheap "did this file change?" signature."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def append_durably(path: str | Path, data: bytes) -> os.stat_result:
    """Append ``data`` to an existing file and fdatasync it; returns the file's
    stat after the write (callers compare its size with what they expected to
    notice a writer that did not take their lock).  Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        write_all(fd, data)
        os.fdatasync(fd)
        return os.fstat(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A name beside ``path`` unique to this process and thread (no leading dot)."""
    return path.with_name(f"{path.name}.tmp.{os.getpid()}.{next(_counter)}")


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp, [fsync], rename, [fsync dir]).

    ``durable=False`` is for caches: a crash may lose the new content but never
    leaves a torn file under ``path``.
    """
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quiet(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quiet(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def unlink_quiet(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def hostname_for_maildir() -> str:
    """The host part of maildir file names, with ``/`` and ``:`` escaped as the
    maildir spec asks (``\\057`` and ``\\072``) and ``,`` escaped too."""
    host = socket.gethostname() or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


#: ``[pid]`` of this process once a :class:`UniqueNames` exists: kept
#: current in forked children by an ``os.register_at_fork`` hook.
_pid: list[int] = []


def _remember_pid() -> None:
    _pid[:] = [os.getpid()]


class UniqueNames:
    """Generates maildir base names ``<sec>.M<usec>P<pid>Q<n>.<host>``.

    Unique per host: pid + a per-process counter.  The pid is cached (no
    system call per name) and re-read in a forked child (``register_at_fork``),
    so a child never repeats its parent's names.
    """

    def __init__(self) -> None:
        self._host = hostname_for_maildir()
        self._seq = itertools.count(1)
        if not _pid:
            _remember_pid()
            os.register_at_fork(after_in_child=_remember_pid)

    def new(self, now: float, size: int | None = None) -> str:
        sec = int(now)
        usec = int((now - sec) * 1_000_000)
        name = f"{sec}.M{usec}P{_pid[0]}Q{next(self._seq)}.{self._host}"
        if size is not None:
            name += f",S={size},W={size}"
        return name


class _DirState:
    __slots__ = ("cond", "done", "running", "started", "users")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.started = 0
        self.done = 0
        self.running = False
        self.users = 0


class DirSyncer:
    """Group commit of directory fsyncs across threads of one process.

    ``sync(path)`` returns after an fsync of ``path`` that began after the call
    began, so every rename the caller made before calling is durable.  While
    one thread fsyncs, the others queue; the next fsync covers all of them.
    Raises the ``OSError`` of a failed fsync to the thread that ran it; the
    waiters then run their own.
    """

    #: Idle directories whose state is kept for the next sync (beyond this
    #: many, a state is dropped when its last user leaves).
    KEEP_IDLE = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dirs: dict[str, _DirState] = {}

    def sync(self, path: str | Path) -> None:
        key = os.fspath(path)
        with self._lock:
            st = self._dirs.get(key)
            if st is None:
                st = self._dirs[key] = _DirState()
            st.users += 1
        try:
            self._sync(key, st)
        finally:
            with self._lock:
                st.users -= 1
                if st.users == 0 and len(self._dirs) > self.KEEP_IDLE:
                    del self._dirs[key]

    @staticmethod
    def _sync(key: str, st: _DirState) -> None:
        with st.cond:
            target = st.started + 1
            while st.done < target:
                if st.running:
                    st.cond.wait()
                    continue
                st.running = True
                st.started += 1
                mine = st.started
                st.cond.release()
                ok = False
                try:
                    fsync_dir(key)
                    ok = True
                finally:
                    st.cond.acquire()
                    st.running = False
                    if ok:
                        st.done = max(st.done, mine)
                    st.cond.notify_all()
