"""The per-folder index: a pure cache beside the maildir (delete it, lose nothing).

Two files in the folder directory:

``mailsuite.index`` — a snapshot of the folder as last synced: UIDs, file
names in ``cur/``, sizes (as sent to clients, CRLF), internal dates, plus the
signatures of ``new/``, ``cur/`` and ``dovecot-uidlist`` it was built from.
A warm open compares those signatures with one ``stat`` each and, when
nothing changed, uses the snapshot without listing the directory.  Binary
layout (all little-endian): magic, a JSON header, three 8-byte arrays, the
names joined by ``\\n``, and a CRC-32 of everything before it.  Nothing in it
is executed or unpickled, so a hostile file can at worst be rejected.

``mailsuite.cache`` — SQLite, one row per message base name: the header end
offset and the parsed MIME structure (``Part.to_data()`` as JSON), computed
on first need.  Rows are keyed by base name, so flag renames keep them.

Either file is rebuilt when missing, corrupt or of another version.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import struct
import sys
import threading
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsuite.storage.fsutil import atomic_write

INDEX_FILE = "mailsuite.index"
CACHE_FILE = "mailsuite.cache"
_MAGIC = b"MSIDX\x01\n"
Sig = tuple[int, int, int] | None


@dataclass(slots=True)
class Snapshot:
    """The folder state: parallel lists in UID order (never mutated in place)."""

    uidvalidity: int = 0
    next_uid: int = 1
    uids: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[float] = field(default_factory=list)
    uidlist_sig: Sig = None
    new_sig: int | None = None
    cur_sig: int | None = None
    highest_modseq: int = 0  # a hint only: see modseq.py


def _array(code: str, values: list[Any]) -> bytes:
    arr = array(code, values)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def _unarray(code: str, data: bytes) -> list[Any]:
    arr = array(code)
    arr.frombytes(data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tolist()


def save_snapshot(folder: Path, snap: Snapshot) -> None:
    """Write the snapshot atomically (not fsynced: it is a cache)."""
    header = json.dumps(
        {
            "uidvalidity": snap.uidvalidity,
            "next_uid": snap.next_uid,
            "count": len(snap.uids),
            "uidlist": list(snap.uidlist_sig) if snap.uidlist_sig else None,
            "new": snap.new_sig,
            "cur": snap.cur_sig,
            "modseq": snap.highest_modseq,
        }
    ).encode()
    names = "\n".join(snap.files).encode("utf-8", "surrogateescape")
    parts = [
        _MAGIC,
        struct.pack("<I", len(header)),
        header,
        _array("Q", snap.uids),
        _array("Q", snap.sizes),
        _array("d", snap.mtimes),
        names,
    ]
    body = b"".join(parts)
    atomic_write(folder / INDEX_FILE, body + struct.pack("<I", zlib.crc32(body)), durable=False)


class SnapshotCache:
    """Decoded snapshots shared by the views of one process.

    Keyed by folder and the index file's (inode, size, mtime); a hit gives a
    new :class:`Snapshot` sharing the cached lists (snapshots replace their
    lists, never change them in place), so sessions on one folder hold one
    copy and skip the decode (~30 ms at 100,000 messages).  A stale hit is
    harmless: its signatures are those of its own content, so the opening
    view lists what changed since.  Bounded (least recently used first out);
    thread-safe.  One per store (no module-level state).
    """

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._items: dict[str, tuple[tuple[int, int, int], Snapshot]] = {}

    def load(self, folder: Path) -> Snapshot | None:
        """Like :func:`load_snapshot`, through the cache."""
        key = str(folder)
        try:
            with open(folder / INDEX_FILE, "rb") as f:
                st = os.fstat(f.fileno())
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)
                with self._lock:
                    hit = self._items.pop(key, None)
                    if hit is not None and hit[0] == sig:
                        self._items[key] = hit
                        return copy.copy(hit[1])
                data = f.read()
        except OSError:
            return None
        snap = _decode_quietly(data)
        if snap is not None:
            with self._lock:
                self._items[key] = (sig, copy.copy(snap))
                while len(self._items) > self._limit:
                    del self._items[next(iter(self._items))]
        return snap


def load_snapshot(folder: Path) -> Snapshot | None:
    """The saved snapshot, or None if missing or not valid."""
    try:
        data = (folder / INDEX_FILE).read_bytes()
    except OSError:
        return None
    return _decode_quietly(data)


def _decode_quietly(data: bytes) -> Snapshot | None:
    try:
        return _decode(data)
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError):
        return None


def _decode(data: bytes) -> Snapshot | None:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
        return None
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        return None
    pos = len(_MAGIC)
    (hlen,) = struct.unpack_from("<I", body, pos)
    pos += 4
    header = json.loads(body[pos : pos + hlen])
    pos += hlen
    n = int(header["count"])
    cols = []
    for code in "QQd":
        cols.append(_unarray(code, body[pos : pos + 8 * n]))
        pos += 8 * n
    names = body[pos:].decode("utf-8", "surrogateescape")
    files = names.split("\n") if n else []
    if len(files) != n or any(len(c) != n for c in cols):
        return None
    ul = header["uidlist"]
    return Snapshot(
        uidvalidity=int(header["uidvalidity"]),
        next_uid=int(header["next_uid"]),
        uids=cols[0],
        files=files,
        sizes=cols[1],
        mtimes=cols[2],
        uidlist_sig=(int(ul[0]), int(ul[1]), int(ul[2])) if ul else None,
        new_sig=header["new"],
        cur_sig=header["cur"],
        highest_modseq=int(header.get("modseq", 0)),
    )


class PartCache:
    """SQLite cache of per-message parse results, keyed by file base name.

    Thread-safe (one connection guarded by a lock).  Any SQLite error on open
    deletes and recreates the file; errors later make lookups miss.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / CACHE_FILE
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:
                for suffix in ("", "-journal"):
                    try:
                        os.unlink(str(self.path) + suffix)
                    except FileNotFoundError:
                        pass
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS part (base TEXT PRIMARY KEY, v INTEGER, data TEXT)"
            )
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, base: str, version: int) -> Any | None:
        with self._lock:
            try:
                row = (
                    self._conn()
                    .execute("SELECT v, data FROM part WHERE base = ?", (base,))
                    .fetchone()
                )
            except sqlite3.DatabaseError:
                return None
        if row is None or row[0] != version:
            return None
        try:
            return json.loads(row[1])
        except ValueError:
            return None

    def get_many(self, bases: list[str], version: int) -> dict[str, Any]:
        """The cached values of those ``bases`` that have one of ``version``
        (one query per 500 bases)."""
        out: dict[str, Any] = {}
        for i in range(0, len(bases), 500):
            chunk = bases[i : i + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                try:
                    rows = (
                        self._conn()
                        .execute(f"SELECT base, v, data FROM part WHERE base IN ({marks})", chunk)
                        .fetchall()
                    )
                except sqlite3.DatabaseError:
                    return out
            for base, v, data in rows:
                if v == version:
                    try:
                        out[base] = json.loads(data)
                    except ValueError:
                        pass
        return out

    def put(self, base: str, version: int, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"))
        with self._lock:
            try:
                self._conn().execute(
                    "INSERT OR REPLACE INTO part (base, v, data) VALUES (?, ?, ?)",
                    (base, version, text),
                )
            except sqlite3.DatabaseError:
                pass

    def forget(self, bases: list[str]) -> None:
        if not bases or not self.path.exists():
            return
        with self._lock:
            try:
                self._conn().executemany("DELETE FROM part WHERE base = ?", [(b,) for b in bases])
            except sqlite3.DatabaseError:
                pass

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
