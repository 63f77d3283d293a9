"""Reading messages of a view (part of :class:`~mailsuite.storage.mailbox.MaildirMailbox`).

:class:`ReadMixin` serves listings (``messages``, ``uids``, ``uidnext``,
``defined_keywords``), message bodies (``open_message``, CRLF-normalised when
the file is not), parsed header end and MIME structure (cached in the index's
part cache) and POP3 UIDLs.  It takes no dot-lock: reads use the snapshot of
the last sync or own change, under the per-view ``self._lock`` only where the
snapshot is consulted; a file renamed meanwhile is found by one forced
refresh of ``cur/``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import IO, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import MessageInfo
from mailsuite.storage.flags import split_name
from mailsuite.storage.headcache import HeadEntry
from mailsuite.storage.messages import MessageList, crlf_copy
from mailsuite.storage.viewbase import MailboxBase, _cached_flags

STRUCTURE_VERSION = 1
#: messages up to this size are kept in the process's body cache ...
BODY_CACHE_MAX = 256 * 1024
#: ... of at most this many bytes
BODY_CACHE_BYTES = 16 * 1024 * 1024


class ReadMixin(MailboxBase):
    """Listings, message bodies and cached structure."""

    def uidnext(self) -> int:
        return self._snap.next_uid

    def messages(self) -> MessageList:
        """The listing as of the last sync or own change: a lazy, read-only
        sequence that later changes of this view do not alter (modseqs are
        fixed now; flags come from the file names of this snapshot), safe to
        read from any thread.  O(1) apart from copying the modseq overlay."""
        with self._lock:
            snap = self._snap
            flags_of = partial(_cached_flags, self._flag_cache, self._keywords)
            return MessageList(
                snap.uids, snap.files, snap.sizes, snap.mtimes, flags_of, self._ms.frozen()
            )

    def uids(self) -> Sequence[int]:
        """The UIDs known at the last sync, ascending (cheaper than ``messages()``)."""
        return self._snap.uids

    def defined_keywords(self) -> list[str]:
        """The keywords ``dovecot-keywords`` defines as of the last sync (a
        superset of those in use; empty means no message has a keyword)."""
        return [k for k in self._keywords.names if k is not None]

    def info(self, uid: int) -> MessageInfo:
        """The MessageInfo of one UID; raises EXPUNGED."""
        pos = self._pos(uid)
        if pos is None:
            raise MailError(ErrorKind.EXPUNGED)
        return self.messages()[pos]

    def _path_of(self, uid: int) -> tuple[int, str]:
        pos = self._pos(uid)
        if pos is None:
            raise MailError(ErrorKind.EXPUNGED)
        return pos, f"{self._cur_s}/{self._snap.files[pos]}"  # str: no pathlib per read

    def open_message(self, uid: int) -> IO[bytes]:
        with self._lock:
            for attempt in range(2):
                pos, path = self._path_of(uid)
                try:
                    f = open(path, "rb")  # noqa: SIM115
                except FileNotFoundError:
                    if attempt:
                        raise MailError(ErrorKind.EXPUNGED) from None
                    self._refresh(force_cur=True)
                    continue
                if os.fstat(f.fileno()).st_size == self._snap.sizes[pos]:
                    return f
                return crlf_copy(f)
        raise MailError(ErrorKind.EXPUNGED)

    def message_bytes(self, uid: int) -> bytes:
        """The stored bytes (as :meth:`open_message` gives them); a message of
        at most ``BODY_CACHE_MAX`` bytes is kept in the process's body cache
        (its content never changes under its base name).  Raises EXPUNGED."""
        cached = self.cached_message(uid)
        if cached is not None:
            return cached
        with self.open_message(uid) as f:
            data: bytes = f.read()
        if len(data) <= BODY_CACHE_MAX:
            base = self._base_of(uid)
            if base is not None:
                self._ctx.bodies.put(self._path_s, base, data)
        return data

    def cached_message(self, uid: int) -> bytes | None:
        """The stored bytes if the body cache has them, else None: no file
        is touched (cheap enough for the reactor thread)."""
        base = self._base_of(uid)
        if base is None:
            return None
        entry = self._ctx.bodies.get(self._path_s, base)
        return entry.raw if entry is not None else None

    def _base_of(self, uid: int) -> str | None:
        with self._lock:
            pos = self._pos(uid)
            return None if pos is None else self._snap.files[pos].partition(":")[0]

    def header_end(self, uid: int) -> int:
        """Offset just past the blank line ending the header (CRLF bytes)."""
        return int(self._parsed(uid)["hdr_end"])

    def header_ends(self, uids: Sequence[int]) -> dict[int, int]:
        """:meth:`header_bytes` lengths of those ``uids`` the part cache knows,
        with one cache query (others, and expunged UIDs, are left out)."""
        with self._lock:
            bases: dict[str, int] = {}
            for uid in uids:
                pos = self._pos(uid)
                if pos is not None:
                    bases[split_name(self._snap.files[pos])[0]] = uid
        found = self._cache.get_many(list(bases), STRUCTURE_VERSION)
        return {
            bases[base]: _root_header_end(data)
            for base, data in found.items()
            if isinstance(data, dict) and "hdr_end" in data
        }

    def header_entries(self, uids: Sequence[int]) -> dict[int, HeadEntry]:
        """The top-level headers of ``uids`` through the process's header
        cache (:mod:`~mailsuite.storage.headcache`): hits read nothing; the
        misses are read with one part-cache query (as :meth:`header_bytes`)
        and cached.  Expunged UIDs are left out."""
        heads = self._ctx.heads
        folder = self._path_s
        found: dict[int, HeadEntry] = {}
        missing: dict[str, int] = {}
        with self._lock:
            files = self._snap.files
            for uid in uids:
                pos = self._pos(uid)
                if pos is None:
                    continue
                base = files[pos].partition(":")[0]
                entry = heads.get(folder, base)
                if entry is None:
                    missing[base] = uid
                else:
                    found[uid] = entry
        if missing:
            ends = self.header_ends(list(missing.values()))
            for base, uid in missing.items():
                try:
                    raw = self.header_bytes(uid, ends.get(uid))
                except MailError as e:
                    if e.kind in (ErrorKind.EXPUNGED, ErrorKind.NONEXISTENT):
                        continue
                    raise
                found[uid] = heads.put(folder, base, raw)
        return found

    def cached_header_entries(self, uids: Sequence[int]) -> dict[int, HeadEntry] | None:
        """:meth:`header_entries` if the header cache holds every one of
        ``uids``, else None: no file or index is touched (cheap enough for
        the reactor thread)."""
        heads = self._ctx.heads
        folder = self._path_s
        found: dict[int, HeadEntry] = {}
        with self._lock:
            files = self._snap.files
            for uid in uids:
                pos = self._pos(uid)
                entry = None if pos is None else heads.get(folder, files[pos].partition(":")[0])
                if entry is None:
                    return None
                found[uid] = entry
        return found

    def header_bytes(self, uid: int, end: int | None = None) -> bytes:
        """The top-level header (blank line included, when there is one) as the
        cached root part delimits it: only those bytes of the file are read.
        ``end`` is its length when known (:meth:`header_ends`).

        Raises EXPUNGED.
        """
        if end is None:
            end = _root_header_end(self._parsed(uid))
        with self.open_message(uid) as f:
            head: bytes = f.read(end)
        return head

    def structure(self, uid: int) -> Any:
        """The MIME structure from ``mailsuite.mime.structure`` (cached in the index).

        Raises EXPUNGED, or INTERNAL when the MIME package is not installed.
        """
        try:
            from mailsuite.mime.structure import Part  # type: ignore[import-not-found]
        except ImportError:
            raise MailError(
                ErrorKind.INTERNAL, detail="mailsuite.mime.structure missing"
            ) from None
        return Part.from_data(self._parsed(uid)["structure"])

    def _parsed(self, uid: int) -> dict[str, Any]:
        with self._lock:
            pos, _ = self._path_of(uid)
            base = split_name(self._snap.files[pos])[0]
        data = self._cache.get(base, STRUCTURE_VERSION)
        if isinstance(data, dict) and "hdr_end" in data:
            return data
        with self.open_message(uid) as f:
            raw = f.read()
        data = {"hdr_end": _header_end(raw), "structure": _parse_structure(raw)}
        self._cache.put(base, STRUCTURE_VERSION, data)
        return data

    def pop3_uidl(self, uid: int) -> str:
        """Dovecot's default ``%08Xu%08Xv``: UID and UIDVALIDITY in hex (RFC 1939 §7)."""
        if self._pos(uid) is None:
            raise MailError(ErrorKind.EXPUNGED)
        return f"{uid:08X}{self.uidvalidity:08X}"


def _root_header_end(data: dict[str, Any]) -> int:
    root = data.get("structure")
    if isinstance(root, list):
        return int(root[0]) + int(root[1])
    return int(data["hdr_end"])


def _header_end(raw: bytes) -> int:
    if raw.startswith(b"\r\n"):
        return 2
    i = raw.find(b"\r\n\r\n")
    return len(raw) if i < 0 else i + 4


def _parse_structure(raw: bytes) -> Any:
    try:
        from mailsuite.mime.structure import parse_message
    except ImportError:
        return None
    return parse_message(raw).to_data()
