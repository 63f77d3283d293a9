"""Helpers for message files: CRLF normalisation while copying, virtual size,
and the lazy ``messages()`` sequence."""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO, overload

from mailsuite.interfaces import MessageInfo

CHUNK = 256 * 1024
_UTC = datetime.UTC
_fromtimestamp = datetime.datetime.fromtimestamp


class CrlfNormalizer:
    """Turns bare LF into CRLF across chunk boundaries (CRLF and bare CR kept)."""

    __slots__ = ("_held_cr",)

    def __init__(self) -> None:
        self._held_cr = False

    def feed(self, data: bytes) -> bytes:
        if self._held_cr:
            data = b"\r" + data
            self._held_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._held_cr = True
        if b"\n" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return data

    def flush(self) -> bytes:
        if self._held_cr:
            self._held_cr = False
            return b"\r"
        return b""


def vsize_of_file(fd: int, size: int) -> int:
    """Size of the file as sent to clients: every bare LF counts as CRLF."""
    bare = 0
    prev_cr = False
    offset = 0
    while offset < size:
        data = os.pread(fd, CHUNK, offset)
        if not data:
            break
        offset += len(data)
        lf = data.count(b"\n")
        crlf = data.count(b"\r\n") + (1 if prev_cr and data[:1] == b"\n" else 0)
        bare += lf - crlf
        prev_cr = data.endswith(b"\r")
    return size + bare


def crlf_copy(src: IO[bytes]) -> IO[bytes]:
    """A CRLF version of an LF-stored file (foreign maildir writers), spooled."""
    out = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    norm = CrlfNormalizer()
    with src:
        while chunk := src.read(CHUNK):
            out.write(norm.feed(chunk))
    out.write(norm.flush())
    out.seek(0)
    return out  # type: ignore[return-value]


def _no_modseq(uid: int) -> int:
    return 0


class MessageList(Sequence[MessageInfo]):
    """``Mailbox.messages()``: a read-only view of one snapshot, built lazily.

    Creating 100,000 ``MessageInfo`` objects up front would cost more than the
    whole warm open, so each is made on access.  The columns are the
    snapshot's (replaced, never changed in place, by the mailbox view), and
    ``flags_of``/``modseq_of`` are fixed when the list is made, so items do
    not change afterwards and the list may be read from any thread.
    """

    __slots__ = ("_all_flags", "_files", "_flags_of", "_modseq_of", "_mtimes", "_sizes", "_uids")

    def __init__(
        self,
        uids: list[int],
        files: list[str],
        sizes: list[int],
        mtimes: list[float],
        flags_of: Callable[[str], frozenset[str]],
        modseq_of: Callable[[int], int] | None = None,
    ) -> None:
        self._uids, self._files, self._sizes, self._mtimes = uids, files, sizes, mtimes
        self._flags_of = flags_of
        self._modseq_of = modseq_of or _no_modseq
        self._all_flags: list[frozenset[str]] | None = None

    def __len__(self) -> int:
        return len(self._uids)

    def _make(self, i: int) -> MessageInfo:
        uid = self._uids[i]
        return MessageInfo(
            uid,
            self._flags_of(self._files[i]),
            self._sizes[i],
            _fromtimestamp(self._mtimes[i], _UTC),
            self._modseq_of(uid),
        )

    @overload
    def __getitem__(self, i: int) -> MessageInfo: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[MessageInfo]: ...

    def __getitem__(self, i: int | slice) -> MessageInfo | Sequence[MessageInfo]:
        if isinstance(i, slice):
            return [self._make(j) for j in range(*i.indices(len(self._uids)))]
        if i < 0:
            i += len(self._uids)
        if not 0 <= i < len(self._uids):
            raise IndexError(i)
        return self._make(i)

    def __iter__(self) -> Iterator[MessageInfo]:
        for i in range(len(self._uids)):
            yield self._make(i)

    @property
    def uids(self) -> list[int]:
        """The UIDs in order (do not modify)."""
        return self._uids

    def flags_at(self, i: int) -> frozenset[str]:
        """The flags of item ``i`` without making its MessageInfo."""
        return self._flags_of(self._files[i])

    def size_at(self, i: int) -> int:
        """The size of item ``i`` without making its MessageInfo."""
        return self._sizes[i]

    def flags_range(self, start: int, stop: int) -> list[frozenset[str]]:
        """The flags of items ``start`` to ``stop - 1``.

        A range of 1,000 items or more makes the flags of the whole listing
        once and keeps them (the file names never change: a change makes a
        new listing), so a repeated ``FETCH 1:* (FLAGS)`` parses no name."""
        memo = self._all_flags
        if memo is None and stop - start >= 1000:
            flags_of = self._flags_of
            memo = self._all_flags = [flags_of(name) for name in self._files]
        if memo is not None:
            return memo[start:stop]
        flags_of = self._flags_of
        return [flags_of(name) for name in self._files[start:stop]]

    def distinct_flags(self) -> set[frozenset[str]]:
        """Every distinct flag set in the listing (one lookup per distinct
        file-name tail: cheap for 100,000 messages)."""
        tails = {name[name.find(":") :]: name for name in self._files}
        return {self._flags_of(name) for name in tails.values()}

    def first_without(self, flag: str) -> int:
        """Index of the first item lacking ``flag``, or -1."""
        flags_of = self._flags_of
        for i, name in enumerate(self._files):
            if flag not in flags_of(name):
                return i
        return -1
