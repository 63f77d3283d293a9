"""Per-account quota usage in ``maildirsize`` (the Maildir++ quota file).

Format: first line the limits ``<bytes>S,<messages>C``; every further line
``<bytes> <messages>`` is a delta (``-`` for removals).  Usage is the sum of
the deltas.  Writers append a line with one ``O_APPEND`` write (atomic for
such small lines); the file is recomputed from the folders when it is
missing, unparsable, larger than 5120 bytes (the Maildir++ rule), or when a
check finds the account over quota and the last recount is older than
``RECOUNT_AFTER`` seconds (foreign deletions are then noticed).  Dovecot's
``maildir`` quota backend reads and writes the same file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.flags import psize_from_base, split_name
from mailsuite.storage.fsutil import atomic_write

QUOTA_FILE = "maildirsize"
MAX_FILE = 5120
RECOUNT_AFTER = 60.0


def scan_usage(root: Path) -> tuple[int, int]:
    """(bytes, messages) in ``cur/`` and ``new/`` of every folder of the account."""
    total = count = 0
    folders = [root]
    try:
        folders += [
            root / n for n in os.listdir(root) if n.startswith(".") and n not in (".", "..")
        ]
    except FileNotFoundError:
        return 0, 0
    for folder in folders:
        for sub in ("cur", "new"):
            d = folder / sub
            try:
                names = os.listdir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                if name.startswith("."):
                    continue
                size = psize_from_base(split_name(name)[0])
                if size is None:
                    try:
                        size = os.stat(d / name).st_size
                    except FileNotFoundError:
                        continue
                total += size
                count += 1
    return total, count


class MaildirSize:
    """Usage accounting and limit checks for one account.

    ``limits()`` gives (bytes, messages), 0 meaning unlimited.  ``check``
    raises ``MailError(OVER_QUOTA)``.
    """

    def __init__(
        self,
        root: Path,
        limits: Callable[[], tuple[int, int]],
        recounts: dict[str, float] | None = None,
    ) -> None:
        self.root = root
        self.path = root / QUOTA_FILE
        self._file = os.fspath(self.path)  # for add(): no Path conversion per delivery
        self._limits = limits
        # Shared across the account objects of one store: when each was last recounted.
        self._recounts = recounts if recounts is not None else {}

    def usage(self) -> tuple[int, int]:
        parsed = self._read()
        if parsed is None:
            return self.recount()
        return parsed

    def _read(self) -> tuple[int, int] | None:
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FILE + 1)
        except FileNotFoundError:
            return None
        if len(data) > MAX_FILE:
            return None
        lines = data.decode("ascii", "replace").splitlines()
        if not lines or not data.endswith(b"\n"):
            return None
        total = count = 0
        for line in lines[1:]:
            parts = line.split()
            if len(parts) != 2:
                return None
            try:
                total += int(parts[0])
                count += int(parts[1])
            except ValueError:
                return None
        return max(total, 0), max(count, 0)

    def recount(self) -> tuple[int, int]:
        """Recompute from the folders and rewrite the file atomically."""
        total, count = scan_usage(self.root)
        max_bytes, max_count = self._limits()
        try:
            atomic_write(
                self.path,
                f"{max_bytes}S,{max_count}C\n{total} {count}\n".encode(),
                durable=False,
            )
        except FileNotFoundError:
            pass  # account directory not created yet
        self._recounts[str(self.root)] = time.monotonic()
        return total, count

    def add(self, size: int, count: int) -> None:
        """Record a change (deliveries: positive; expunges: negative)."""
        if not size and not count:
            return
        try:
            fd = os.open(self._file, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            # No file: the next reader recounts from the folders (which
            # include this change).  Deliveries to accounts never given a
            # limit land here every time: one failed open, which is the
            # cheapest check that stays right when another process creates
            # the file meanwhile.
            return
        try:
            os.write(fd, f"{size} {count}\n".encode())
        finally:
            os.close(fd)

    def check(self, size: int, count: int = 1) -> None:
        """Raise OVER_QUOTA if adding ``size`` bytes / ``count`` messages exceeds a limit."""
        max_bytes, max_count = self._limits()
        if not max_bytes and not max_count:
            return
        if self._fits(self.usage(), size, count, max_bytes, max_count):
            return
        if time.monotonic() - self._recounts.get(
            str(self.root), -1e9
        ) > RECOUNT_AFTER and self._fits(self.recount(), size, count, max_bytes, max_count):
            return
        raise MailError(ErrorKind.OVER_QUOTA)

    @staticmethod
    def _fits(used: tuple[int, int], size: int, count: int, max_b: int, max_c: int) -> bool:
        return (not max_b or used[0] + size <= max_b) and (not max_c or used[1] + count <= max_c)
