"""The outbound queue on disk: layout, records, atomic updates and locks.

Layout under the queue directory (``<data>/queue``)::

    tmp/        files being written: messages being received, state updates
    msg/<id>    the message bytes (CRLF lines), never changed after commit
    env/<id>    the entry's state as JSON: envelope and per-recipient status
    lock/<id>   an ``flock`` target held while a process delivers or edits it

Contracts (DESIGN.md §4.3, issue 6):

* **Commit order.**  :meth:`QueuedMessage.commit` fsyncs the message, renames
  it into ``msg/``, fsyncs that directory, then writes the state file the
  same way into ``env/``.  An entry exists exactly when ``env/<id>`` exists;
  only ``env/`` is scanned, so a half-written message (crash before commit)
  is never sent.  :meth:`QueueStore.cleanup` removes such leftovers.
* **State updates** (:meth:`QueueStore.save`) write a new file in ``tmp/``,
  fsync it, rename it over ``env/<id>`` and fsync ``env/``: a reader sees the
  old state or the new one, never a mix.  A recipient recorded as delivered
  stays delivered after any crash.
* **Locking.**  Whoever changes an entry holds ``flock(LOCK_EX)`` on
  ``lock/<id>`` (taken without waiting; a held lock means "busy").  The lock
  is released by the kernel when a process dies, so a crash never leaves a
  stale lock.  The server and ``mailsuite-admin queue`` share this rule.

Every method is blocking; server code calls them through the runner.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Envelope
from mailsuite.storage.fsutil import write_all

STATE_VERSION = 1
_ID_RE = re.compile(r"[0-9a-f]{8,40}")

#: recipient status values
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def valid_id(queue_id: str) -> bool:
    """True for a syntactically valid queue id (no path can be smuggled in)."""
    return bool(_ID_RE.fullmatch(queue_id))


def new_id() -> str:
    """A unique id that sorts by creation time: microseconds (hex) + 32 random bits."""
    return f"{time.time_ns() // 1000:013x}{secrets.token_hex(4)}"


@dataclass
class RecipientState:
    """One recipient of a queue entry.

    ``status`` is pending, delivered or failed.  ``action`` is the RFC 3464
    action of a final status (delivered, relayed, expanded, failed).
    ``notified`` is True once a DSN for the final status was queued or found
    unwanted.  ``status_code``/``diagnostic``/``remote_mta`` describe the last
    result for DSNs and ``mailsuite-admin queue show``.
    """

    address: str
    params: dict[str, str] = field(default_factory=dict)
    status: str = PENDING
    action: str = ""
    notified: bool = False
    status_code: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    updated: float = 0.0


@dataclass
class QueueEntry:
    """The state of one queued message (``env/<id>``)."""

    id: str
    mail_from: str
    params: dict[str, str]
    recipients: list[RecipientState]
    created: float
    size: int = 0
    attempts: int = 0
    next_attempt: float = 0.0
    last_attempt: float = 0.0
    delay_notified: bool = False

    def pending(self) -> list[RecipientState]:
        return [r for r in self.recipients if r.status == PENDING]

    def finished(self) -> bool:
        """Nothing left to deliver and every wanted DSN queued."""
        return all(r.status != PENDING and r.notified for r in self.recipients)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["version"] = STATE_VERSION
        return json.dumps(data, sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> QueueEntry:
        """Raises ValueError (or KeyError/TypeError) for a damaged file."""
        data: dict[str, Any] = json.loads(raw)
        if data.pop("version", None) != STATE_VERSION:
            raise ValueError("unknown queue state version")
        rcpts = [RecipientState(**r) for r in data.pop("recipients")]
        return cls(recipients=rcpts, **data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class QueuedMessage:
    """A message being received into the queue (two-phase, DESIGN.md §4.2).

    ``write`` appends bytes (CRLF, dot-unstuffed); ``commit(recipients)``
    makes the entry durable and returns its id; ``abort`` removes the file.
    ``on_commit(id)``, if given, is called after a successful commit (from the
    committing thread).  Blocking.
    """

    def __init__(self, store: QueueStore, envelope: Envelope, now: float, on_commit: Any = None):
        self._store = store
        self._envelope = envelope
        self._now = now
        self._on_commit = on_commit
        self.id = new_id()
        self._tmp = store.dir / "tmp" / f"{self.id}.msg"
        self._file: IO[bytes] | None = open(  # noqa: SIM115 (closed by commit/abort)
            os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb"
        )
        self._size = 0
        self._committed = False

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise MailError(ErrorKind.INTERNAL, detail="write after commit/abort")
        try:
            self._file.write(data)
        except OSError as e:  # disk full, I/O error: the sender may try again
            raise MailError(ErrorKind.TEMPORARY, detail=f"queue write: {e}")
        self._size += len(data)

    def size(self) -> int:
        return self._size

    def commit(self, recipients: list[str]) -> str:
        """Durably queue the message for ``recipients``; returns the queue id.

        Raises MailError(BAD_INPUT) for an empty recipient list (the file is
        removed), MailError(TEMPORARY) when the disk fails.
        """
        if self._file is None:
            raise MailError(ErrorKind.INTERNAL, detail="commit after commit/abort")
        rcpts = list(dict.fromkeys(recipients))
        if not rcpts:
            self.abort()
            raise MailError(ErrorKind.BAD_INPUT, "No recipients")
        env = self._envelope
        entry = QueueEntry(
            id=self.id,
            mail_from=env.mail_from,
            params=dict(env.params),
            recipients=[RecipientState(r, dict(env.rcpt_params.get(r, {}))) for r in rcpts],
            created=self._now,
            size=self._size,
            next_attempt=self._now,
        )
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.rename(self._tmp, self._store.dir / "msg" / self.id)
            _fsync_dir(self._store.dir / "msg")
            self._store.save(entry)
        except OSError as e:
            self.abort()
            raise MailError(ErrorKind.TEMPORARY, detail=f"queue commit: {e}")
        self._committed = True
        if self._on_commit is not None:
            self._on_commit(self.id)
        return self.id

    def abort(self) -> None:
        """Remove the partial message (idempotent; does nothing after a commit)."""
        if self._committed:
            return
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self._store.dir / "msg" / self.id).unlink()


class EntryLock:
    """An exclusive ``flock`` on ``lock/<id>``; release with :meth:`release`."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class QueueStore:
    """File operations on one queue directory.  All methods are blocking."""

    SUBDIRS = ("tmp", "msg", "env", "lock")

    def __init__(self, queue_dir: Path) -> None:
        self.dir = Path(queue_dir)
        for sub in self.SUBDIRS:
            (self.dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seen: dict[str, tuple[int, int, float]] = {}

    # -- creating ------------------------------------------------------------
    def begin(self, envelope: Envelope, now: float, on_commit: Any = None) -> QueuedMessage:
        try:
            return QueuedMessage(self, envelope, now, on_commit)
        except OSError as e:
            raise MailError(ErrorKind.TEMPORARY, detail=f"queue begin: {e}")

    def enqueue(self, envelope: Envelope, data: bytes, now: float) -> str:
        """Queue ``data`` for ``envelope.recipients`` in one step; returns the id."""
        msg = self.begin(envelope, now)
        try:
            msg.write(data)
        except BaseException:
            msg.abort()
            raise
        return msg.commit(envelope.recipients)

    # -- reading ---------------------------------------------------------------
    def ids(self) -> list[str]:
        """The ids of all entries, oldest first."""
        try:
            names = os.listdir(self.dir / "env")
        except FileNotFoundError:
            return []
        return sorted(n for n in names if valid_id(n))

    def load(self, queue_id: str) -> QueueEntry:
        """The entry's state.  Raises MailError(NONEXISTENT) if it is gone,
        MailError(INTERNAL) if its state file is damaged."""
        if not valid_id(queue_id):
            raise MailError(ErrorKind.NONEXISTENT, "No such queue entry")
        try:
            raw = (self.dir / "env" / queue_id).read_bytes()
        except FileNotFoundError:
            raise MailError(ErrorKind.NONEXISTENT, "No such queue entry")
        try:
            return QueueEntry.from_json(raw)
        except (ValueError, KeyError, TypeError) as e:
            raise MailError(ErrorKind.INTERNAL, "Damaged queue entry", detail=f"{queue_id}: {e}")

    def message_path(self, queue_id: str) -> Path:
        return self.dir / "msg" / queue_id

    def open_message(self, queue_id: str) -> IO[bytes]:
        return open(self.message_path(queue_id), "rb")

    def scan(self) -> dict[str, float]:
        """id -> next attempt time of every entry.  Re-reads only the state
        files whose (inode, mtime) changed since the last scan of this object."""
        result: dict[str, float] = {}
        seen: dict[str, tuple[int, int, float]] = {}
        for queue_id in self.ids():
            try:
                st = os.stat(self.dir / "env" / queue_id)
            except FileNotFoundError:
                continue
            old = self._seen.get(queue_id)
            if old is not None and old[:2] == (st.st_ino, st.st_mtime_ns):
                due = old[2]
            else:
                try:
                    due = self.load(queue_id).next_attempt
                except MailError:
                    continue  # vanished meanwhile, or damaged (logged by the caller on claim)
            seen[queue_id] = (st.st_ino, st.st_mtime_ns, due)
            result[queue_id] = due
        self._seen = seen
        return result

    # -- changing --------------------------------------------------------------
    def save(self, entry: QueueEntry) -> None:
        """Atomically replace the entry's state file (tmp, fsync, rename, fsync dir)."""
        self.save_bytes(entry.id, entry.to_json())

    def save_bytes(self, queue_id: str, raw: bytes) -> None:
        """:meth:`save` for a state already serialised (by the reactor thread)."""
        tmp = self.dir / "tmp" / f"{queue_id}.{secrets.token_hex(4)}.state"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_all(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.dir / "env" / queue_id)
        _fsync_dir(self.dir / "env")

    def lock(self, queue_id: str) -> EntryLock | None:
        """Take the entry's lock without waiting; None if another holder has it.

        Raises MailError(NONEXISTENT) if the entry does not exist (checked
        after locking, so a concurrent delete is seen).
        """
        if not valid_id(queue_id):
            raise MailError(ErrorKind.NONEXISTENT, "No such queue entry")
        if not (self.dir / "env" / queue_id).exists():
            raise MailError(ErrorKind.NONEXISTENT, "No such queue entry")
        fd = os.open(self.dir / "lock" / queue_id, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not (self.dir / "env" / queue_id).exists():
            os.close(fd)
            raise MailError(ErrorKind.NONEXISTENT, "No such queue entry")
        return EntryLock(fd)

    @contextlib.contextmanager
    def locked(self, queue_id: str) -> Iterator[QueueEntry]:
        """``with store.locked(id) as entry:`` edit and :meth:`save` under the lock.

        Raises MailError(IN_USE) if the entry is being delivered right now.
        """
        lock = self.lock(queue_id)
        if lock is None:
            raise MailError(ErrorKind.IN_USE, "Queue entry is being delivered, try again")
        try:
            yield self.load(queue_id)
        finally:
            lock.release()

    def remove(self, queue_id: str) -> None:
        """Delete the entry: state first (it stops existing), then message and lock file.
        The caller holds the lock."""
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "env" / queue_id).unlink()
        _fsync_dir(self.dir / "env")
        for sub in ("msg", "lock"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / sub / queue_id).unlink()

    def cleanup(self, now: float, grace: float = 3600.0) -> list[str]:
        """Remove leftovers of crashes older than ``grace`` seconds (wall clock):
        temp files, and messages or locks without a state file.  Returns names removed."""
        removed = []
        live = set(self.ids())
        for sub in ("tmp", "msg", "lock"):
            for name in os.listdir(self.dir / sub):
                if sub != "tmp" and name in live:
                    continue
                path = self.dir / sub / name
                try:
                    if now - path.stat().st_mtime < grace:
                        continue
                    if sub == "lock":
                        held = self.lock_probe(path)
                        if held:
                            continue
                    path.unlink()
                    removed.append(f"{sub}/{name}")
                except FileNotFoundError:
                    continue
        return removed

    @staticmethod
    def lock_probe(path: Path) -> bool:
        """True if someone holds the lock file at ``path``."""
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
