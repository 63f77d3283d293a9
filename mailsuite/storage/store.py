"""The Maildir store: accounts under ``<root>/<domain>/<localpart>/``.

``root`` is ``<data>/mail``.  :meth:`MaildirStore.account` does not touch the
disk.  ``quota_lookup(address)`` (optional) gives the account's (bytes,
messages) limits, 0 meaning unlimited; APPEND and COPY check it, and the
delivery agent uses it unless given its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import ChangeHub
from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.fsutil import DirSyncer, UniqueNames
from mailsuite.storage.headcache import HeaderCache
from mailsuite.storage.index import SnapshotCache
from mailsuite.storage.mailbox import FolderContext
from mailsuite.storage.quota import MaildirSize
from mailsuite.storage.reading import BODY_CACHE_BYTES

QuotaLookup = Callable[[str], tuple[int, int]]


def _no_limits(address: str) -> tuple[int, int]:
    return 0, 0


class MaildirStore:
    """Implements :class:`mailsuite.interfaces.Store`."""

    def __init__(
        self,
        root: Path,
        hub: ChangeHub | None = None,
        clock: Callable[[], float] = time.time,
        quota_lookup: QuotaLookup | None = None,
        *,
        header_cache_bytes: int = 32 * 1024 * 1024,
        body_cache_bytes: int = BODY_CACHE_BYTES,
    ) -> None:
        self.root = Path(root)
        self.hub = hub
        self.clock = clock
        self.quota_lookup: QuotaLookup = quota_lookup or _no_limits
        self.names = UniqueNames()
        self.syncer = DirSyncer()
        self._recounts: dict[str, float] = {}
        self.snapshots = SnapshotCache()
        self.heads = HeaderCache(header_cache_bytes)
        self.bodies = HeaderCache(body_cache_bytes)

    def account_path(self, address: str) -> Path:
        """``<root>/<domain>/<localpart>``; raises BAD_ADDRESS for unusable addresses."""
        local, at, domain = address.rpartition("@")
        for part in (local, domain):
            if (
                not at
                or not part
                or part in (".", "..")
                or "/" in part
                or any(ord(c) < 32 or c == "\x7f" for c in part)
                or len(part.encode("utf-8", "surrogatepass")) > 255
            ):
                raise MailError(ErrorKind.BAD_ADDRESS)
        return self.root / domain / local

    def account(self, address: str) -> MaildirAccount:
        root = self.account_path(address)
        quota = MaildirSize(root, lambda: self.quota_lookup(address), self._recounts)
        ctx = FolderContext(
            address,
            root,
            self.hub,
            self.clock,
            self.names,
            self.syncer,
            quota,
            self.snapshots,
            self.heads,
            self.bodies,
        )
        return MaildirAccount(address, root, ctx, quota)
