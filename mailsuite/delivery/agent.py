"""The delivery agent: the one path by which mail enters a mailbox (DESIGN.md §4.2).

Two phases, all blocking (run them through the BlockingRunner):

``begin(envelope)`` starts a delivery; ``write(data)`` streams the content
(bare LF becomes CRLF).  The first :data:`HELD_MAX` bytes are held in
memory (an aborted small message never touches the disk); from then on, or
at commit, the content goes to a spool file in ``spool_dir`` (never more
than that in memory).  ``commit(targets)`` fsyncs the spool file once and
then delivers:

* every target but the last: the spool file is hard-linked into the
  folder's ``tmp/`` (or copied + fsynced when a link is impossible) and
  renamed into ``new/``;
* the last target (so the only one of a one-recipient message): the spool
  file itself is renamed into the folder's ``new/`` (no link, no ``tmp/``
  entry, no unlink; a spool on another file system is linked or copied);
* each ``new/`` touched is fsynced.

Either way a file is renamed into ``new/`` only after its bytes were
fsynced.  Directory fsyncs of concurrent commits into one folder are grouped
(:class:`~mailsuite.storage.fsutil.DirSyncer`); a recipient is reported
delivered only after an fsync that began after its own rename.  A crash
leaves at most a file in the spool or a folder's ``tmp/``, never a partial
message in ``new/``.

Why the spool and not the folder's ``tmp/`` for one target: measured on
the project's test machine (ext4 without a journal), creating the file in
20 folders' ``tmp/`` from 16 pool threads cost more kernel time (inode
allocation) than creating it in the one spool directory.

Per-recipient errors are ``MailError``: OVER_QUOTA (limits from
``quota_lookup(account)``, 0 = unlimited, reused for up to
:data:`QUOTA_CACHE_SECONDS`: a limit changed with ``mailsuite-admin``
applies to deliveries at most that much later), UNKNOWN_MAILBOX (unusable account
address), TEMPORARY (I/O error, lock timeout).  A recipient with several
targets fails as a whole if any target fails (copies already made stay; the
sender retries the recipient).  Targets whose folder does not exist are
delivered to INBOX; a missing account tree is created (``ensure_created``).

After commit a ``MailboxChange("added")`` (without UIDs: they are assigned at
the folder's next ``sync()``) is published per folder to the store's hub.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from twisted.logger import Logger

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import DeliveryResult, Envelope, LocalTarget, MailboxChange
from mailsuite.storage.fsutil import UniqueNames, copy_durably, unlink_quiet, write_all
from mailsuite.storage.messages import CrlfNormalizer
from mailsuite.storage.names import normalize, to_disk
from mailsuite.storage.quota import MaildirSize
from mailsuite.storage.store import MaildirStore

log = Logger()

#: Quota limits read from the directory are reused this long (seconds) per
#: account: one directory read per account every few seconds instead of one
#: per delivery.  The staleness bound for quota changes made by the admin.
QUOTA_CACHE_SECONDS = 2.0
_MAX_CACHED = 4096  # accounts whose limits are cached before expired ones are dropped
#: Content up to this size stays in memory until commit (see the module doc).
HELD_MAX = 128 * 1024
SPOOL_MAX_AGE = 36 * 3600  # seconds; the age after which Maildir tmp/ files are debris too
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class _Account:
    """What the agent keeps per account it delivered to: the maildir (known
    complete) and its quota file."""

    __slots__ = ("path", "quota", "root")

    def __init__(self, root: Path, quota: MaildirSize) -> None:
        self.root = root
        self.path = os.fspath(root)
        self.quota = quota


class MaildirDeliveryAgent:
    """Implements :class:`mailsuite.interfaces.DeliveryAgent` over a :class:`MaildirStore`."""

    def __init__(
        self,
        store: MaildirStore,
        quota_lookup: Callable[[str], tuple[int, int]] | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.quota_lookup = quota_lookup or store.quota_lookup
        self.spool_dir = (
            spool_dir if spool_dir is not None else store.root.parent / "spool" / "tmp"
        )
        self.names = UniqueNames()
        self._recounts: dict[str, float] = {}
        self._limits: dict[str, tuple[float, tuple[int, int]]] = {}
        self._accounts: dict[str, _Account] = {}  # seen complete (with cur/)

    def begin(self, envelope: Envelope) -> MaildirDelivery:
        return MaildirDelivery(self, envelope)

    def open_spool(self) -> tuple[str, int]:
        """A new spool file: (path, fd open for writing)."""
        path = os.path.join(self.spool_dir, self.names.new(self.store.clock()))
        try:
            fd = os.open(path, _CREATE, 0o600)
        except FileNotFoundError:
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, _CREATE, 0o600)
        return path, fd

    def clean_spool(self, max_age: float = SPOOL_MAX_AGE) -> int:
        """Remove spool files not modified for ``max_age`` seconds; returns
        how many.  Such a file belongs to a transaction whose process died
        before the commit: its message was never acknowledged (a committed
        file is renamed out of the spool before the 250), and a live
        transaction writes to its file far more often than that.  Blocking:
        the service calls it once at start, before the reactor runs."""
        removed = 0
        now = time.time()
        try:
            names = os.listdir(self.spool_dir)
        except FileNotFoundError:
            return 0
        for name in names:
            path = os.path.join(self.spool_dir, name)
            try:
                if now - os.stat(path).st_mtime > max_age:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("removed {n} abandoned spool files", n=removed)
        return removed

    def limits(self, account: str) -> tuple[int, int]:
        """``quota_lookup(account)``, cached for :data:`QUOTA_CACHE_SECONDS`."""
        now = time.monotonic()
        cached = self._limits.get(account)
        if cached is not None and now - cached[0] < QUOTA_CACHE_SECONDS:
            return cached[1]
        value = self.quota_lookup(account)
        if len(self._limits) >= _MAX_CACHED:
            self._limits = {
                a: c for a, c in self._limits.items() if now - c[0] < QUOTA_CACHE_SECONDS
            }
        self._limits[account] = (now, value)
        return value

    def quota_for(self, account: str, root: Path) -> MaildirSize:
        return MaildirSize(root, lambda: self.limits(account), self._recounts)

    def account_root(self, address: str) -> Path:
        """The account's maildir, created (with its default folders) if it is
        not complete yet.  Raises UNKNOWN_MAILBOX for an unusable address."""
        return self._account(address).root

    def _account(self, address: str) -> _Account:
        known = self._accounts.get(address)
        if known is not None:
            return known
        try:
            root = self.store.account_path(address)
        except MailError:
            raise MailError(ErrorKind.UNKNOWN_MAILBOX) from None
        if not (root / "cur").is_dir():
            self.store.account(address).ensure_created()
        if len(self._accounts) >= _MAX_CACHED:
            self._accounts.clear()
        known = self._accounts[address] = _Account(root, self.quota_for(address, root))
        return known

    def recreate(self, address: str) -> None:
        """The account tree vanished under us (deleted, repaired): build it again."""
        self._accounts.pop(address, None)
        self.store.account(address).ensure_created()


class MaildirDelivery:
    """Implements :class:`mailsuite.interfaces.Delivery`: content held in
    memory, or a spool file once it outgrew :data:`HELD_MAX`."""

    def __init__(self, agent: MaildirDeliveryAgent, envelope: Envelope) -> None:
        self.agent = agent
        self.envelope = envelope
        self.path: str | None = None  # the spool file, once there is one
        self._fd: int | None = None
        self._held: list[bytes] | None = []  # None once committed or aborted
        self._size = 0
        self._norm = CrlfNormalizer()

    def write(self, data: bytes) -> None:
        if self._held is None:
            raise MailError(ErrorKind.INTERNAL, detail="write after commit/abort")
        data = self._norm.feed(data)
        if self._fd is None:
            if self._size + len(data) <= HELD_MAX:
                self._held.append(data)
                self._size += len(data)
                return
            self._spool()
        self._write(data)

    def _spool(self) -> None:
        """Move the held content into a new spool file."""
        assert self._held is not None
        self.path, self._fd = self.agent.open_spool()
        held, self._held = self._held, []
        self._size = 0
        for chunk in held:
            self._write(chunk)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        write_all(self._fd, data)
        self._size += len(data)

    def size(self) -> int:
        return self._size + (1 if self._norm._held_cr else 0)

    def abort(self) -> None:
        self._held = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path is not None:
            unlink_quiet(self.path)
            self.path = None

    def commit(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]:
        """Deliver durably to every target; returns one result per recipient."""
        if self._held is None:
            raise MailError(ErrorKind.INTERNAL, detail="commit after commit/abort")
        try:
            if self._fd is None:
                self._spool()
            self._write(self._norm.flush())
            assert self._fd is not None
            os.fsync(self._fd)
        except OSError as exc:
            self.abort()
            log.error("spool fsync failed: {exc}", exc=exc)
            err = MailError(ErrorKind.TEMPORARY, detail=str(exc))
            return [DeliveryResult(r, err) for r in targets]
        os.close(self._fd)
        self._fd = None
        self._held = None
        try:
            return self._deliver_all(targets)
        finally:
            self.abort()

    # -- placing the spool file --------------------------------------------------
    def _rename(self, target: LocalTarget) -> tuple[str, LocalTarget, str]:
        """The last target: move the (fsynced) spool file itself into the
        folder's new/; falls back to :meth:`_place` when the spool is on
        another file system."""
        agent = self.agent
        assert self.path is not None
        account = agent._account(target.account)
        fdir, folder = _folder_dir(account, target.folder)
        account.quota.check(self._size)
        new_dir = os.path.join(fdir, "new")
        final = os.path.join(new_dir, agent.names.new(agent.store.clock(), self._size))
        try:
            os.rename(self.path, final)
        except FileNotFoundError:
            agent.recreate(target.account)  # deleted, or raced with a repair
            os.rename(self.path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return self._place(target)
        self.path = None  # nothing left to unlink
        account.quota.add(self._size, 1)
        return new_dir, target, folder

    def _deliver_all(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]:
        """Every target but the last gets a hard link; the last, the spool file."""
        placed: dict[str, list[tuple[str, LocalTarget, str]]] = {}
        errors: dict[str, MailError] = {}
        left = sum(len(tlist) for tlist in targets.values())
        for rcpt, tlist in targets.items():
            placed[rcpt] = []
            for target in tlist:
                left -= 1
                try:
                    placed[rcpt].append(self._place(target) if left else self._rename(target))
                except MailError as exc:
                    errors[rcpt] = exc
                    break
                except OSError as exc:
                    log.error("delivery to {t} failed: {exc}", t=target, exc=exc)
                    errors[rcpt] = MailError(ErrorKind.TEMPORARY, detail=str(exc))
                    break
        synced: dict[str, MailError | None] = {}
        for rcpt, items in placed.items():
            for new_dir, _, _ in items:
                if new_dir not in synced:
                    synced[new_dir] = self._sync(new_dir)
                err = synced[new_dir]
                if err is not None and rcpt not in errors:
                    errors[rcpt] = err
        results = []
        for rcpt in targets:
            results.append(DeliveryResult(rcpt, errors.get(rcpt)))
        self._publish({(t.account, folder) for items in placed.values() for _, t, folder in items})
        return results

    def _sync(self, new_dir: str) -> MailError | None:
        try:
            self.agent.store.syncer.sync(new_dir)
        except OSError as exc:
            log.error("fsync of {d} failed: {exc}", d=new_dir, exc=exc)
            return MailError(ErrorKind.TEMPORARY, detail=str(exc))
        return None

    def _place(self, target: LocalTarget) -> tuple[str, LocalTarget, str]:
        agent = self.agent
        assert self.path is not None
        account = agent._account(target.account)
        fdir, folder = _folder_dir(account, target.folder)
        account.quota.check(self._size)
        base = agent.names.new(agent.store.clock(), self._size)
        tmp = os.path.join(fdir, "tmp", base)
        try:
            os.link(self.path, tmp)
        except FileNotFoundError:
            agent.recreate(target.account)  # deleted, or raced with a repair
            os.link(self.path, tmp)
        except OSError:
            with open(self.path, "rb") as f:
                copy_durably(f, tmp)
        new_dir = os.path.join(fdir, "new")
        try:
            os.rename(tmp, os.path.join(new_dir, base))
        except BaseException:
            unlink_quiet(tmp)
            raise
        account.quota.add(self._size, 1)
        return new_dir, target, folder

    def _publish(self, where: set[tuple[str, str]]) -> None:
        hub = self.agent.store.hub
        if hub is None:
            return
        for account, folder in sorted(where):
            hub.publish(MailboxChange(account, folder, "added", ()))


def _folder_dir(account: _Account, name: str) -> tuple[str, str]:
    """(directory, canonical name) of folder ``name``, or of INBOX."""
    if name == "INBOX":
        return account.path, name
    folder = _folder_or_inbox(account.root, name)
    disk = to_disk(folder)
    return (os.path.join(account.path, disk) if disk else account.path), folder


def _folder_or_inbox(root: Path, name: str) -> str:
    try:
        canonical = normalize(name)
    except MailError:
        return "INBOX"
    disk = to_disk(canonical)
    if disk and not (root / disk / "cur").is_dir():
        return "INBOX"
    return canonical
