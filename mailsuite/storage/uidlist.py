"""``dovecot-uidlist`` version 3: UIDVALIDITY, next UID and UID -> file base.

Format (what Dovecot >= 1.1 writes, so both can take turns on one maildir)::

    3 V<uidvalidity> N<next uid> G<mailbox guid, 32 hex>[ <other header fields>]
    <uid>[ <ext fields>] :<file base name>

The base name is the file name up to its first ``:``.  Records are in UID
order; a record appended later may repeat a base (the latest wins).  The
effective next UID is max(``N``, last UID + 1), because writers may append
records without rewriting the header.  A last line without ``\\n`` is an
interrupted append and is ignored.

Readers need no lock.  Writers hold ``dovecot-uidlist.lock``
(:class:`~mailsuite.storage.locking.DotLock`) and either append records
(``O_APPEND`` + fdatasync) or write a complete new file and rename it over
the old one (+ fsync of the directory).  UIDs are never reused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from mailsuite.storage.fsutil import (
    append_durably,
    atomic_write,
    fsync_dir,
    stat_sig,
    temp_name,
    write_all,
)

UIDLIST_FILE = "dovecot-uidlist"
UIDVALIDITY_FILE = "dovecot-uidvalidity"


class Uidlist:
    """In-memory copy of one folder's ``dovecot-uidlist``, refreshed incrementally."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / UIDLIST_FILE
        self.lock_path = folder / (UIDLIST_FILE + ".lock")
        self.uidvalidity = 0
        self.next_uid = 1
        self.guid = ""
        self.header_extra: list[str] = []
        self.version = 0
        self.by_base: dict[str, int] = {}
        self.exts: dict[str, str] = {}
        self.sig: tuple[int, int, int] | None = None
        self._offset = 0
        self._header = b""
        self._last_line = b""

    # ------------------------------------------------------------ reading
    def stat_sig(self) -> tuple[int, int, int] | None:
        return stat_sig(self.path)

    def refresh(self) -> bool:
        """Re-read the file if it changed (appended part only when possible).

        Returns True if anything was (re)read.  A missing file leaves an empty
        map with ``uidvalidity == 0``.
        """
        sig = self.stat_sig()
        if sig == self.sig:
            return False
        if sig is None:
            self._reset()
            return True
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            if self._can_append_read(f, sig):
                f.seek(self._offset)
                self._parse_records(f.read(), self._offset)
            else:
                self._reset()
                self._parse_all(f.read())
        self.sig = sig
        return True

    def _can_append_read(self, f: object, sig: tuple[int, int, int]) -> bool:
        if self.sig is None or sig[0] != self.sig[0] or sig[1] < self._offset:
            return False
        fd = f.fileno()  # type: ignore[attr-defined]
        start = self._offset - len(self._last_line)
        head = os.pread(fd, len(self._header), 0)
        tail = os.pread(fd, len(self._last_line), start)
        return head == self._header and tail == self._last_line

    def _reset(self) -> None:
        self.uidvalidity = self.version = 0
        self.next_uid = 1
        self.guid = ""
        self.header_extra = []
        self.by_base = {}
        self.exts = {}
        self.sig = None
        self._offset = 0
        self._header = self._last_line = b""

    def _parse_all(self, data: bytes) -> None:
        nl = data.find(b"\n")
        if nl < 0:
            return
        self._header = data[: nl + 1]
        fields = self._header.decode("ascii", "replace").split()
        if fields and fields[0] == "1" and len(fields) >= 3:
            self.version = 1
            self.uidvalidity = _int(fields[1])
            self.next_uid = max(1, _int(fields[2]))
        elif fields and fields[0] == "3":
            self.version = 3
            for field in fields[1:]:
                key, value = field[:1], field[1:]
                if key == "V":
                    self.uidvalidity = _int(value)
                elif key == "N":
                    self.next_uid = max(1, _int(value))
                elif key == "G":
                    self.guid = value
                else:
                    self.header_extra.append(field)
        self._offset = nl + 1
        self._last_line = self._header
        self._parse_records(data[nl + 1 :], nl + 1)

    def _parse_records(self, data: bytes, base_offset: int) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            return
        complete = data[: end + 1]
        last_start = complete.rfind(b"\n", 0, end) + 1
        self._last_line = complete[last_start:]
        self._offset = base_offset + end + 1
        by_base, exts = self.by_base, self.exts
        top = self.next_uid - 1
        v1 = self.version == 1
        for line in complete.decode("utf-8", "surrogateescape").splitlines():
            uid_s, _, rest = line.partition(" ")
            if not uid_s.isdigit() or not rest:
                continue
            if v1:
                ext, base = "", rest
            elif rest[0] == ":":
                ext, base = "", rest[1:]
            else:
                i = rest.find(" :")
                if i < 0:
                    continue
                ext, base = rest[:i], rest[i + 2 :]
            if not base or "/" in base:
                continue
            uid = int(uid_s)
            by_base[base] = uid
            if ext:
                exts[base] = ext
            else:
                exts.pop(base, None)
            if uid > top:
                top = uid
        self.next_uid = top + 1

    # ------------------------------------------------------------ writing
    def assign(self, bases: Iterable[str]) -> dict[str, int]:
        """Give each base without a UID the next UID.  Caller holds the lock
        and has called :meth:`refresh` under it; call :meth:`save` after."""
        out: dict[str, int] = {}
        for base in bases:
            uid = self.by_base.get(base)
            if uid is None:
                uid = self.next_uid
                self.next_uid += 1
                self.by_base[base] = uid
            out[base] = uid
        return out

    def append(self, items: list[tuple[int, str]]) -> None:
        """Append records (lock held, file unchanged since refresh)."""
        data = "".join(f"{uid} :{base}\n" for uid, base in items).encode(
            "utf-8", "surrogateescape"
        )
        st = append_durably(self.path, data)
        if st.st_size != self._offset + len(data):
            self.sig = None  # someone else wrote meanwhile: re-read next time
            return
        self._offset = st.st_size
        self._last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
        self.sig = (st.st_ino, st.st_size, st.st_mtime_ns)

    def can_append(self) -> bool:
        return self.version == 3 and self.sig is not None and self.sig[1] == self._offset

    def rewrite(self, keep: Callable[[str], bool] | None = None) -> None:
        """Write a complete new file (lock held); ``keep(base)`` filters records."""
        if not self.guid:
            self.guid = uuid.uuid4().hex
        header = f"3 V{self.uidvalidity} N{self.next_uid} G{self.guid}"
        if self.header_extra:
            header += " " + " ".join(self.header_extra)
        items = sorted((uid, base) for base, uid in self.by_base.items())
        lines = [header]
        for uid, base in items:
            if keep is not None and not keep(base):
                del self.by_base[base]
                self.exts.pop(base, None)
                continue
            ext = self.exts.get(base)
            lines.append(f"{uid} {ext} :{base}" if ext else f"{uid} :{base}")
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        tmp = temp_name(self.path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_all(fd, data)
            os.fdatasync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self.version = 3
        self._header = data[: data.find(b"\n") + 1]
        self._offset = len(data)
        self._last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
        self.sig = (st.st_ino, st.st_size, st.st_mtime_ns)


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


def allocate_uidvalidity(root: Path, now: float) -> int:
    """A new UIDVALIDITY for a folder of the account rooted at ``root``.

    Like Dovecot: the last value handed out is kept (hex) in
    ``dovecot-uidvalidity`` plus an empty marker ``dovecot-uidvalidity.<hex>``
    that is renamed to claim the next value, so two processes (ours or
    Dovecot's) never hand out the same one.  The result is max(now, last + 1).
    """
    for _ in range(100):
        markers = [n for n in os.listdir(root) if n.startswith(UIDVALIDITY_FILE + ".")]
        last = 0
        for name in markers:
            try:
                last = max(last, int(name.rsplit(".", 1)[1], 16))
            except ValueError:
                continue
        try:
            last = max(last, int((root / UIDVALIDITY_FILE).read_text().strip() or "0", 16))
        except (FileNotFoundError, ValueError):
            pass
        value = max(int(now), last + 1) & 0xFFFFFFFF or 1
        new_marker = root / f"{UIDVALIDITY_FILE}.{value:08x}"
        try:
            if markers:
                os.rename(root / markers[0], new_marker)
                for extra in markers[1:]:
                    _unlink(root / extra)
            else:
                os.close(os.open(new_marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400))
        except (FileNotFoundError, FileExistsError):
            continue  # another process claimed a value meanwhile
        atomic_write(root / UIDVALIDITY_FILE, f"{value:08x}".encode())
        return value
    raise OSError("could not allocate a UIDVALIDITY")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
