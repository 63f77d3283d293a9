"""CONDSTORE/QRESYNC mod-sequences of one folder (RFC 7162 §3.1, §3.2, §5.3).

API for the IMAP layer (all on :class:`~mailsuite.storage.mailbox.MaildirMailbox`,
blocking, call through the runner; values are consistent with the view's
last ``sync()`` / own change):

* ``messages()[i].modseq`` — the message's mod-sequence (always > 0).
* ``highest_modseq() -> int`` — HIGHESTMODSEQ (§3.1.2.1, STATUS §3.1.7): at
  least every message's modseq and every remembered expunge's modseq.
* ``modseq(uid) -> int`` — one message's modseq; raises EXPUNGED.
* ``store_flags_conditional(uids, flags, mode, unchanged_since=None)
  -> StoreResult`` (``mailsuite.interfaces``) — STORE with the UNCHANGEDSINCE
  modifier (§3.1.3): a message whose modseq is > ``unchanged_since`` is not
  changed and listed in ``modified`` (ascending; the MODIFIED response code);
  all others are changed, and ``messages`` gives (flags, modseq) of every
  existing message that passed, changed or not (the untagged FETCH with
  MODSEQ that §3.1.3 requires even for .SILENT); ``changed`` lists those
  whose flags changed.  UIDs that do not exist are left out of all three.
  One call gets one new modseq; setting a flag that is already set changes
  nothing (no new modseq, §3.1).  ``unchanged_since=0`` always fails (every
  modseq is positive).  For UIDs in ``modified`` the view already shows the
  current flags and modseq (``messages()``/``modseq()``): send them
  unsolicited (§3.1.3 example 6).  The avoidance of spurious MODIFIED for
  +FLAGS/-FLAGS (§3.1.12) needs the client's cached flags, so it is the
  IMAP layer's job (retry with the current modseq when the flags it touches
  did not change).  ``store_flags`` is the unconditional form with its old
  return value.
* ``changed_since(modseq) -> list[int]`` — UIDs with modseq > ``modseq``
  (CHANGEDSINCE §3.1.4.1, SEARCH MODSEQ §3.1.5, QRESYNC §3.2.5).
* ``expunged_since(modseq) -> (uids, complete)`` — UIDs expunged with a
  modseq > ``modseq`` (VANISHED (EARLIER), §3.2.5/§3.2.6).  The log is
  bounded (the last :data:`MAX_EXPUNGED` UIDs); ``complete`` is False when
  ``modseq`` is older than what it still covers: the IMAP layer must then
  report every UID of the client's range that no longer exists
  (§3.2.5.2, §5.1), which is always correct.  UIDs the view still shows
  are left out until a ``sync()`` reports them expunged.
* ``expunged_at(uids) -> dict[uid, modseq]`` — when each UID was expunged
  (where the log still knows).  ``highest_modseq()`` already stays below
  expunges the view has not reported through ``sync()``; when the IMAP layer
  itself delays EXPUNGE/VANISHED after sync() returned them (during FETCH,
  STORE, SEARCH), it must send ``[HIGHESTMODSEQ m-1]`` with ``m`` the
  lowest such modseq (§3.2, last paragraph before §3.2.1).

All of these are per view and consistent with the view's ``messages()``: a
view never shows a modseq newer than the flags it shows.  ``sync()``
reports messages whose modseq someone else raised in
``SyncResult.flags_changed`` (also when the flags look the same again).

What raises a modseq: this view's ``store_flags*`` and ``expunge``; another
view's or another process's changes (a flag rename in ``cur/`` seen by
``sync()`` that the log does not account for gets a new modseq, once, by
whichever mailsuite view sees it first; Dovecot or ``mv`` count as other
processes); ``append``/``copy_to`` and deliveries (a new UID gets a modseq
when a view first sees it).  Limitation: a foreign rename of a message that
was never changed since the log was created (it has the base modseq and no
logged name) is missed if no view had a snapshot from before the rename
(index deleted and no session open meanwhile).

Storage: ``mailsuite.modseq`` in the folder directory.  It is NOT a cache
(the index is): a header line, a binary block written by compaction, then
text records appended under the lock ``mailsuite.modseq.lock``
(:class:`DotLock`, O_APPEND + fdatasync; a compaction is a complete new file
written atomically and durably)::

    MSMODSEQ 1 I<id> V<uidvalidity> B<base> H<highest> F<floor> U<uid> N<n> E<e> L<len>
    <block: n uids, n modseqs (u64 LE), tails ("\\n"-joined, len bytes),
     e expunged uids, e modseqs, CRC-32>
    m <modseq> <uid-set> :<tail>     the messages now have <modseq>; <tail> is
                                     their file name after the first ":"
    x <modseq> <uid-set>             the messages were expunged at <modseq>

A message without an entry has the ``base`` modseq (``U``: the highest UID
when the file was created; later UIDs are logged when first seen), so an
untouched folder costs nothing per message; a changed one costs 16 bytes in
memory once compacted (plus its tail, split only when needed).  The text
part is compacted once it exceeds 64 KiB + 1/8 of the block, so reading it
on open stays cheap.  The recorded tail makes detection of foreign
renames idempotent across processes: a view records a change only when the
name it sees differs from the recorded one.  ``floor``: expunges with a
modseq <= floor may be forgotten (trimmed, or before the file existed).

New modseqs are ``max(highest + 1, now in microseconds)``, so they track
the clock and stay far below 2**63.  If the file is lost or corrupt it is
recreated with a base that is higher than anything handed out before:
``max(now_us, ceiling, hint + 1)`` where ``ceiling`` comes from the
account's ``mailsuite.modseq-ceiling`` file (beside ``dovecot-uidvalidity``;
every modseq of the account's folders stays below it; raised by
:data:`RESERVE` with a durable write about once a year) and ``hint`` is the
highest modseq the view or the index snapshot remembers.  Only losing the
log, the ceiling file and the index together while the clock is set back
could repeat a value.

Lock order: modseq lock, then uidlist lock (a sync under the modseq lock may
move ``new/`` into ``cur/``); nothing asks for the modseq lock while holding
the uidlist lock, so the two never deadlock.
"""

from __future__ import annotations

import os
import struct
import sys
import uuid
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path

from mailsuite.storage.fsutil import append_durably, atomic_write, stat_sig
from mailsuite.storage.locking import DotLock

MODSEQ_FILE = "mailsuite.modseq"
CEILING_FILE = "mailsuite.modseq-ceiling"
MAX_EXPUNGED = 20_000
COMPACT_MIN = 64 * 1024
RESERVE = 366 * 86400 * 1_000_000
MAX_MODSEQ = 2**63 - 1
MAX_SET = 10_000_000  # more UIDs in one record than any folder holds: corrupt
_MAGIC = "MSMODSEQ"


class CorruptLog(ValueError):
    """The modseq file cannot be trusted (it is then recreated)."""


def format_uids(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1:3,7"`` (sorted, duplicates ignored)."""
    out: list[str] = []
    start = prev = -2
    for uid in sorted(set(uids)):
        if uid != prev + 1:
            if start >= 0:
                out.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    if start >= 0:
        out.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(out)


def parse_uids(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition(":")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise CorruptLog(text)
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a or len(out) + b - a > MAX_SET:
            raise CorruptLog(text)
        out.extend(range(a, b + 1))
    return out


def tail_of(name: str) -> str:
    """What a record keeps of a file name: the part after the first ``:``."""
    return name.partition(":")[2].replace("\n", "?")


def _u64(values: list[int]) -> bytes:
    arr = array("Q", values)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def _un64(data: bytes) -> array[int]:
    arr = array("Q")
    arr.frombytes(data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


class ModseqLog:
    """In-memory copy of one folder's ``mailsuite.modseq``, refreshed incrementally.

    The compacted block stays in two ``array("Q")`` columns (16 bytes per
    message; its tails are split only when a rename must be checked); text
    records go into the :attr:`mods`/:attr:`tails` overlay dicts, which win.
    Not thread-safe: owned by one view, used under the view's lock.  Readers
    need no file lock; every method named ``*_locked`` needs
    :attr:`lock_path` held (``DotLock``) and a :meth:`refresh` under it.
    """

    def __init__(self, folder: Path, account_root: Path, clock: Callable[[], float]) -> None:
        self.path = folder / MODSEQ_FILE
        self.lock_path = folder / (MODSEQ_FILE + ".lock")
        self._ceiling_path = account_root / CEILING_FILE
        self._clock = clock
        self._ceiling = 0
        self.highest = 0  # kept across a reset: the hint for recreation
        self._clear()

    def _clear(self) -> None:
        self.valid = False
        self.uidvalidity = self.base = self.floor = self.created_uid = 0
        self.mods: dict[int, int] = {}
        self.tails: dict[int, str] = {}
        self.expunged: dict[int, int] = {}
        self._bu: array[int] = array("Q")  # block: UIDs ascending
        self._bm: array[int] = array("Q")  # block: their modseqs
        self._btails = b""
        self._bt: list[str] | None = None
        self._intern: dict[str, str] = {}
        self.sig: tuple[int, int, int] | None = None
        self._header = b""
        self._offset = self._block_end = 0
        self._last_line = b""

    # ------------------------------------------------------------ reading
    def modseq_of(self, uid: int) -> int:
        m = self.mods.get(uid)
        if m is not None:
            return m
        bu = self._bu
        i = bisect_left(bu, uid)
        if i < len(bu) and bu[i] == uid:
            return self._bm[i]
        return self.base

    def frozen(self) -> Callable[[int], int]:
        """A :meth:`modseq_of` fixed at the current state, safe to call from
        any thread later (the block columns are replaced, never changed in
        place; the overlay is copied: O(overlay))."""
        mods, bu, bm, base = dict(self.mods), self._bu, self._bm, self.base

        def modseq_of(uid: int) -> int:
            m = mods.get(uid)
            if m is not None:
                return m
            i = bisect_left(bu, uid)
            if i < len(bu) and bu[i] == uid:
                return bm[i]
            return base

        return modseq_of

    def recorded_tail(self, uid: int) -> str | None:
        """The name tail last logged for ``uid``, or None."""
        tail = self.tails.get(uid)
        if tail is not None:
            return tail
        bu = self._bu
        i = bisect_left(bu, uid)
        if i < len(bu) and bu[i] == uid:
            return self._block_tails()[i]
        return None

    def _block_tails(self) -> list[str]:
        if self._bt is None:
            text = self._btails.decode("utf-8", "surrogateescape")
            self._bt = text.split("\n")[: len(self._bu)]
        return self._bt

    def changed_uids(self, modseq: int) -> set[int]:
        """UIDs with an entry above ``modseq`` (expunged ones included)."""
        out = {u for u, m in self.mods.items() if m > modseq}
        out.update(u for u, m in zip(self._bu, self._bm, strict=True) if m > modseq)
        return out

    def stat_sig(self) -> tuple[int, int, int] | None:
        return stat_sig(self.path)

    def refresh(self, uidvalidity: int) -> set[int] | None:
        """Re-read what changed.  Returns the UIDs whose modseq (or expunge)
        records are new, or None when every message may have changed (file
        replaced by another one, recreated).  Afterwards :attr:`valid` is
        False if the file is missing, corrupt or of another UIDVALIDITY."""
        sig = self.stat_sig()
        if sig is not None and sig == self.sig and self.valid and self.uidvalidity == uidvalidity:
            return set()
        if sig is None:
            self._clear()
            return None
        touched: set[int] | None
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self.valid and self._can_append_read(f.fileno(), sig):
                    f.seek(self._offset)
                    touched = self._parse_records(f.read(), self._offset)
                else:
                    touched = self._full_read(f.read())
        except (ValueError, struct.error, OverflowError, MemoryError):
            self._clear()  # CorruptLog, a bad number or UTF-8: not trustworthy
            return None
        self.sig = sig
        if self.uidvalidity != uidvalidity:
            self._clear()
            return None
        return touched

    def _can_append_read(self, fd: int, sig: tuple[int, int, int]) -> bool:
        if self.sig is None or sig[0] != self.sig[0] or sig[1] < self._offset:
            return False
        head = os.pread(fd, len(self._header), 0)
        start = self._offset - len(self._last_line)
        return head == self._header and os.pread(fd, len(self._last_line), start) == (
            self._last_line
        )

    def _full_read(self, data: bytes) -> set[int] | None:
        old = ModseqLog.__new__(ModseqLog)  # the previous state, for modseq_of only
        old.mods, old._bu, old._bm = self.mods, self._bu, self._bm
        old.base, old_x, was_valid = self.base, self.expunged, self.valid
        self._clear()
        self._parse_block(data)
        self._parse_records(data[self._block_end :], self._block_end)
        self.valid = True
        if not was_valid or old.base != self.base:
            return None
        explicit = set(self.mods).union(self._bu)
        touched = {u for u in explicit if old.modseq_of(u) != self.modseq_of(u)}
        touched.update(u for u in self.expunged if u not in old_x)
        return touched

    def _parse_block(self, data: bytes) -> None:
        nl = data.find(b"\n")
        if nl < 0:
            raise CorruptLog("no header")
        fields = data[:nl].decode("ascii").split()
        if len(fields) < 2 or fields[0] != _MAGIC or fields[1] != "1":
            raise CorruptLog("bad magic")
        h: dict[str, int] = {}
        for field in fields[2:]:
            if field[:1] != "I":
                if not field[1:].isdigit():
                    raise CorruptLog(field)
                h[field[:1]] = int(field[1:])
        try:
            n, e, tlen = h["N"], h["E"], h["L"]
            base, highest = h["B"], h["H"]
        except KeyError as exc:
            raise CorruptLog("header field missing") from exc
        start = nl + 1
        end = start + 16 * n + tlen + 16 * e
        if len(data) < end + 5 or data[end + 4 : end + 5] != b"\n":
            raise CorruptLog("short block")
        block = data[start:end]
        if struct.unpack("<I", data[end : end + 4])[0] != zlib.crc32(data[:end]):
            raise CorruptLog("block checksum")
        uids, mods = _un64(block[: 8 * n]), _un64(block[8 * n : 16 * n])
        pos = 16 * n
        tails = block[pos : pos + tlen]
        if tails.count(b"\n") != max(0, n - 1) or not 0 < base <= highest <= MAX_MODSEQ:
            raise CorruptLog("block content")
        if "V" not in h:
            raise CorruptLog("no UIDVALIDITY")
        self.uidvalidity, self.base, self.highest = h["V"], base, highest
        self.floor, self.created_uid = h.get("F", base), h.get("U", 0)
        pos += tlen
        xuids, xmods = _un64(block[pos : pos + 8 * e]), _un64(block[pos + 8 * e :])
        self._bu, self._bm, self._btails = uids, mods, tails
        self.expunged = dict(zip(xuids, xmods, strict=True))
        self._header = data[: nl + 1]
        self._block_end = self._offset = end + 5
        self._last_line = data[end : end + 5]

    def _parse_records(self, data: bytes, base_offset: int) -> set[int]:
        end = data.rfind(b"\n")
        touched: set[int] = set()
        if end < 0:
            return touched  # nothing complete (a torn last line is ignored)
        complete = data[: end + 1]
        for line in complete.decode("utf-8", "surrogateescape").split("\n")[:-1]:
            touched.update(self._apply_line(line))
        self._last_line = complete[complete.rfind(b"\n", 0, end) + 1 :]
        self._offset = base_offset + end + 1
        return touched

    def _apply_line(self, line: str) -> list[int]:
        kind, _, rest = line.partition(" ")
        mod_s, _, rest = rest.partition(" ")
        if not mod_s.isdigit() or kind not in ("m", "x"):
            raise CorruptLog(line)
        modseq = int(mod_s)
        if not self.highest <= modseq <= MAX_MODSEQ:
            raise CorruptLog(line)  # each write's lines share one modseq above the rest
        if kind == "m":
            set_s, sep, tail = rest.partition(" :")
            if not sep:
                raise CorruptLog(line)
            uids = parse_uids(set_s)
            self._apply_change(modseq, uids, tail)
        else:
            uids = parse_uids(rest)
            self._apply_expunge(modseq, uids)
        return uids

    def _apply_change(self, modseq: int, uids: list[int], tail: str) -> None:
        self.highest = max(self.highest, modseq)
        tail = self._intern.setdefault(tail, tail)
        for uid in uids:
            self.mods[uid] = modseq
            self.tails[uid] = tail
            self.expunged.pop(uid, None)  # back again (restored): not vanished

    def _apply_expunge(self, modseq: int, uids: list[int]) -> None:
        self.highest = max(self.highest, modseq)
        for uid in uids:
            # Re-insert: insertion order = age.  The message keeps its last
            # modseq (a view may still show it) until the next compaction.
            self.expunged.pop(uid, None)
            self.expunged[uid] = modseq

    # ------------------------------------------------------------ questions
    def accounts_for(self, uid: int, tail: str, renamed: bool) -> bool:
        """Whether the log already knows that message ``uid`` has name tail
        ``tail``.  ``renamed``: the view saw its name change (else it is a
        message new to the view)."""
        if uid in self.expunged:
            return False  # a file came back (restored backup): a new modseq
        known = self.recorded_tail(uid)
        if known is not None:
            return known == tail
        return not renamed and uid <= self.created_uid

    def expunged_since(self, modseq: int) -> tuple[list[int], bool]:
        return sorted(u for u, m in self.expunged.items() if m > modseq), modseq >= self.floor

    # ------------------------------------------------------------ writing
    def next_modseq_locked(self) -> int:
        now_us = int(self._clock() * 1_000_000)
        value = max(self.highest + 1, now_us)
        if value > MAX_MODSEQ:  # pragma: no cover - 290,000 years away
            raise OverflowError("modseq space exhausted")
        if value >= self._ceiling:
            self._raise_ceiling(value)
        return value

    def _read_ceiling(self) -> int:
        try:
            text = self._ceiling_path.read_text("ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return 0
        return int(text) if text.isdigit() else 0

    def _raise_ceiling(self, value: int) -> None:
        """Make the account ceiling exceed ``value`` (durably, its own lock)."""
        self._ceiling = self._read_ceiling()
        if value < self._ceiling:
            return
        with DotLock(self._ceiling_path.with_name(CEILING_FILE + ".lock"), clock=self._clock):
            current = self._read_ceiling()
            if value >= current:
                current = value + RESERVE
                atomic_write(self._ceiling_path, b"%d\n" % current)
            self._ceiling = current

    def create_locked(self, uidvalidity: int, created_uid: int, hint: int) -> None:
        """Start a new file whose base is above anything handed out before."""
        now_us = int(self._clock() * 1_000_000)
        base = max(now_us, self._read_ceiling(), hint + 1, self.highest + 1)
        if base >= self._ceiling:
            self._raise_ceiling(base)
        self._clear()
        self.uidvalidity, self.base, self.highest = uidvalidity, base, base
        self.floor, self.created_uid = base, created_uid
        self.rewrite_locked()
        self.valid = True

    def record_locked(self, changes: dict[int, str], expunged: Iterable[int]) -> int:
        """Give ``changes`` (uid -> tail) and ``expunged`` one new modseq; returns it."""
        gone = sorted(set(expunged))
        modseq = self.next_modseq_locked()
        groups: dict[str, list[int]] = {}
        for uid, tail in changes.items():
            groups.setdefault(tail, []).append(uid)
        lines = [f"m {modseq} {format_uids(u)} :{t}\n" for t, u in groups.items()]
        if gone:
            lines.append(f"x {modseq} {format_uids(gone)}\n")
        for tail, uids in groups.items():
            self._apply_change(modseq, uids, tail)
        self._apply_expunge(modseq, gone)
        data = "".join(lines).encode("utf-8", "surrogateescape")
        if self.sig is None or self.sig[1] != self._offset or self._needs_compaction(len(data)):
            self.rewrite_locked()  # torn tail, or time to compact
        else:
            self._append(data)
        return modseq

    def _needs_compaction(self, extra: int) -> bool:
        text = self._offset - self._block_end + extra
        return text > COMPACT_MIN + self._block_end // 8 or len(self.expunged) > 2 * MAX_EXPUNGED

    def _append(self, data: bytes) -> None:
        st = append_durably(self.path, data)
        if st.st_size != self._offset + len(data):
            self.sig = None  # someone wrote without the lock: re-read next time
            return
        self._offset = st.st_size
        self._last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
        self.sig = (st.st_ino, st.st_size, st.st_mtime_ns)

    def rewrite_locked(self) -> None:
        """Compaction: one durable new file holding the whole state."""
        if len(self.expunged) > MAX_EXPUNGED:
            items = list(self.expunged.items())
            cut = len(items) - MAX_EXPUNGED
            self.floor = max(self.floor, max(m for _, m in items[:cut]))
            self.expunged = dict(items[cut:])
        mods = dict(zip(self._bu, self._bm, strict=True))
        mods.update(self.mods)
        all_tails = dict(zip(self._bu, self._block_tails(), strict=True))
        all_tails.update(self.tails)
        for uid in self.expunged:
            mods.pop(uid, None)
        uids = sorted(mods)
        tails = "\n".join(all_tails.get(u, "") for u in uids).encode("utf-8", "surrogateescape")
        modseqs = [mods[u] for u in uids]
        block = b"".join(
            [
                _u64(uids),
                _u64(modseqs),
                tails,
                _u64(list(self.expunged)),
                _u64(list(self.expunged.values())),
            ]
        )
        header = (
            f"{_MAGIC} 1 I{uuid.uuid4().hex} V{self.uidvalidity} B{self.base} "
            f"H{self.highest} F{self.floor} U{self.created_uid} N{len(uids)} "
            f"E{len(self.expunged)} L{len(tails)}\n"
        ).encode("ascii")
        tail = struct.pack("<I", zlib.crc32(header + block)) + b"\n"
        data = header + block + tail
        atomic_write(self.path, data)
        st = os.stat(self.path)
        self._bu, self._bm = array("Q", uids), array("Q", modseqs)
        self._btails, self._bt = tails, None
        self.mods, self.tails = {}, {}
        self._header = header
        self._block_end = self._offset = len(data)
        self._last_line = tail
        self.sig = (st.st_ino, st.st_size, st.st_mtime_ns)
