"""The delivery agent: the one path by which mail enters a mailbox (DESIGN.md §4.2).

Two phases, all blocking (run them through the BlockingRunner):

``begin(envelope)`` opens a spool file in ``spool_dir``; ``write(data)``
streams into it (bare LF becomes CRLF; never the whole message in memory);
``commit(targets)`` makes it durable once (fsync) and then, per target
folder, hard-links it into the folder's ``tmp/`` (or copies + fsyncs when a
link is impossible), renames it into ``new/`` and fsyncs ``new/``.  Directory
fsyncs of concurrent commits into one folder are grouped
(:class:`~mailsuite.storage.fsutil.DirSyncer`); a recipient is reported
delivered only after an fsync that began after its own rename.

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

import os
import time
from collections.abc import Callable
from pathlib import Path

from twisted.logger import Logger

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import DeliveryResult, Envelope, LocalTarget, MailboxChange
from mailsuite.storage.fsutil import UniqueNames
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
        self._complete: set[str] = set()  # account roots seen complete (with cur/)

    def begin(self, envelope: Envelope) -> MaildirDelivery:
        path = os.path.join(self.spool_dir, self.names.new(self.store.clock()))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o600)
        return MaildirDelivery(self, envelope, path, fd)

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
        try:
            root = self.store.account_path(address)
        except MailError:
            raise MailError(ErrorKind.UNKNOWN_MAILBOX) from None
        key = str(root)
        if key not in self._complete:
            if not (root / "cur").is_dir():
                self.store.account(address).ensure_created()
            self._complete.add(key)
        return root

    def recreate(self, address: str) -> None:
        """The account tree vanished under us (deleted, repaired): build it again."""
        self._complete.discard(str(self.store.account_path(address)))
        self.store.account(address).ensure_created()


class MaildirDelivery:
    """Implements :class:`mailsuite.interfaces.Delivery`: one spool file."""

    def __init__(self, agent: MaildirDeliveryAgent, envelope: Envelope, path: str, fd: int):
        self.agent = agent
        self.envelope = envelope
        self.path = path
        self._fd: int | None = fd
        self._size = 0
        self._norm = CrlfNormalizer()

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise MailError(ErrorKind.INTERNAL, detail="write after commit/abort")
        self._write(self._norm.feed(data))

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)

    def size(self) -> int:
        return self._size + (1 if self._norm._held_cr else 0)

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def commit(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]:
        """Deliver durably to every target; returns one result per recipient."""
        if self._fd is None:
            raise MailError(ErrorKind.INTERNAL, detail="commit after commit/abort")
        try:
            self._write(self._norm.flush())
            os.fsync(self._fd)
        except OSError as exc:
            self.abort()
            log.error("spool fsync failed: {exc}", exc=exc)
            err = MailError(ErrorKind.TEMPORARY, detail=str(exc))
            return [DeliveryResult(r, err) for r in targets]
        os.close(self._fd)
        self._fd = None
        try:
            return self._deliver_all(targets)
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def _deliver_all(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]:
        placed: dict[str, list[tuple[str, LocalTarget, str]]] = {}
        errors: dict[str, MailError] = {}
        for rcpt, tlist in targets.items():
            placed[rcpt] = []
            for target in tlist:
                try:
                    placed[rcpt].append(self._place(target))
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
        root = agent.account_root(target.account)
        folder = _folder_or_inbox(root, target.folder)
        quota = agent.quota_for(target.account, root)
        quota.check(self._size)
        disk = to_disk(folder)
        fdir = os.path.join(root, disk) if disk else os.fspath(root)
        base = agent.names.new(agent.store.clock(), self._size)
        tmp = os.path.join(fdir, "tmp", base)
        try:
            os.link(self.path, tmp)
        except FileNotFoundError:
            agent.recreate(target.account)  # deleted, or raced with a repair
            os.link(self.path, tmp)
        except OSError:
            _copy_durably(self.path, tmp)
        new_dir = os.path.join(fdir, "new")
        try:
            os.rename(tmp, os.path.join(new_dir, base))
        except BaseException:
            _unlink_quiet(tmp)
            raise
        quota.add(self._size, 1)
        return new_dir, target, folder

    def _publish(self, where: set[tuple[str, str]]) -> None:
        hub = self.agent.store.hub
        if hub is None:
            return
        for account, folder in sorted(where):
            hub.publish(MailboxChange(account, folder, "added", ()))


def _folder_or_inbox(root: Path, name: str) -> str:
    try:
        canonical = normalize(name)
    except MailError:
        return "INBOX"
    disk = to_disk(canonical)
    if disk and not (root / disk / "cur").is_dir():
        return "INBOX"
    return canonical


def _copy_durably(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while chunk := f.read(256 * 1024):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quiet(dst)
            raise
        os.close(fd)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
