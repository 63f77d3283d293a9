"""Reading IMAP commands: lines, literals and their limits (RFC 3501 §4.3).

:class:`CommandReader` sits between :class:`LineProtocol` framing and the
session.  A command is a line, plus -- when a line ends in ``{n}``,
``{n+}`` (RFC 7888 LITERAL+) or ``~{n}`` (RFC 3516 literal8) -- a literal
of ``n`` bytes and another line, and so on.  The complete command's
fragments go to :meth:`CommandReader.execute`.

* Before a synchronising literal the size is checked
  (:meth:`literal_limit`; for APPEND also :meth:`append_room`, the quota)
  and only then is ``+`` sent; a refused synchronising literal ends the
  command at once.  A refused non-synchronising literal is read and
  discarded, then the command is answered: never executed, never buffered.
* An APPEND may carry several messages (RFC 3502 MULTIAPPEND): each is
  checked against the limit, the quota check counts the earlier ones, and
  the command is bounded (:data:`MAX_APPEND_MESSAGES`, in total
  :data:`APPEND_TOTAL_FACTOR` times the limit).
* APPEND literals over :data:`SPOOL_THRESHOLD` (or once the command holds
  :data:`APPEND_MEMORY` in memory) are written to an anonymous
  file under :meth:`spool_directory` through the runner (input is held
  while a chunk is written), so memory stays bounded; they reach the
  tokenizer as :class:`~mailsuite.imap.parser.FileLiteral`.
* A line over ``max_line_length`` is answered ``BAD [TOOBIG]`` with the
  client's tag and skipped; the connection stays usable.
* While :attr:`line_hook` is set (AUTHENTICATE, IDLE), whole lines go to it
  (``None`` for an over-long line) instead.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer

from mailsuite.imap.command import Result
from mailsuite.imap.parser import FileLiteral, literal_at_end
from mailsuite.protocol.lines import LineProtocol

#: APPEND literals larger than this go to a spool file, not memory
SPOOL_THRESHOLD = 256 * 1024
#: MULTIAPPEND (RFC 3502) bounds for one APPEND command: literals kept in
#: memory (the rest is spooled), messages, and total size in units of the
#: per-message limit (``literal_limit()``, the APPENDLIMIT)
APPEND_MEMORY = 1024 * 1024
MAX_APPEND_MESSAGES = 1000
APPEND_TOTAL_FACTOR = 10

TAG_RE = re.compile(r'^[^\x00-\x20\x7f-\uffff(){%*"\\+]{1,64}$')
_HEAD_RE = re.compile(rb"^(\S+) +(?:(?i:UID) +)?(\S+)")


class CommandReader(LineProtocol):
    """Assembles commands with their literals; subclasses implement
    :meth:`execute`, :meth:`literal_limit`, :meth:`append_room`,
    :meth:`spool_directory` and ``run`` (the blocking-work seam)."""

    def __init__(self) -> None:
        super().__init__()
        self.line_hook: Callable[[bytes | None], Any] | None = None
        self._fragments: list[bytes] = []
        self._cmd_size = 0
        self._cmd_tag = ""
        self._literal: bytearray | None = None
        self._literal_left = 0
        self._literal_size = 0
        self._literal_binary = False
        self._spool: Any = None  # temporary file receiving a large APPEND literal
        self._refused: Result | None = None  # a command being read only to be refused
        self._refused_tag = ""
        self._is_append = False  # the command being read is APPEND
        self._append_bytes = 0  # earlier message literals of this APPEND (MULTIAPPEND)
        self._append_memory = 0  # ... of which kept in memory
        self._append_count = 0

    # -- for subclasses ---------------------------------------------------------
    def execute(self, fragments: list[bytes]) -> Any:
        """Run one complete command (lines and literals)."""
        raise NotImplementedError

    def literal_limit(self) -> int:
        """Largest literal accepted now."""
        raise NotImplementedError

    def append_room(self) -> defer.Deferred[int | None] | None:
        """Bytes an APPEND may still store (None: no limit), or None to skip the check."""
        return None

    def spool_directory(self) -> Path:
        raise NotImplementedError

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred[Any]:
        raise NotImplementedError

    # -- lines ------------------------------------------------------------------
    def line_received(self, line: bytes) -> Any:
        if self.line_hook is not None and not self._fragments:
            return self.line_hook(line)
        self._fragments.append(line)
        self._cmd_size += len(line)
        announcement = literal_at_end(line)
        if announcement is None:
            return self._command_complete()
        return self._literal_announced(
            announcement.size, announcement.non_sync, announcement.binary
        )

    def line_too_long(self) -> Any:
        if self.line_hook is not None and not self._fragments:
            return self.line_hook(None)
        first = self._fragments[0] if self._fragments else self.long_line_head
        tag = self._refused_tag or guess_tag(first)
        self.reset_command()
        self.log.info("{cid} command line too long", cid=self.conn_id)
        self.send_line(f"{tag or '*'} BAD [TOOBIG] Command line too long")
        return None

    # -- literals -----------------------------------------------------------------
    def _literal_announced(self, size: int, non_sync: bool, binary: bool) -> Any:
        head = _HEAD_RE.match(self._fragments[0])
        tag = self._cmd_tag = guess_tag(self._fragments[0])
        is_append = self._is_append = head is not None and head.group(2).upper() == b"APPEND"
        limit = self.literal_limit()
        refusal: Result | None = None
        if is_append:  # each message up to the limit, the command up to 10 of them
            too_big = size > limit or self._append_count >= MAX_APPEND_MESSAGES
            too_big = too_big or self._append_bytes + size > limit * APPEND_TOTAL_FACTOR
        else:
            too_big = self._cmd_size + size > limit + self.max_line_length * 4 or size > limit
        if too_big:
            refusal = Result("NO" if tag else "BAD", "Literal too big", "TOOBIG")
        spool = is_append and (
            size > SPOOL_THRESHOLD or self._append_memory + size > APPEND_MEMORY
        )
        if refusal is None and self._refused is None and is_append:
            room = self.append_room()
            if room is not None:
                return room.addCallback(self._after_quota, size, non_sync, binary, spool)
        return self._accept_literal(size, non_sync, binary, spool, refusal)

    def _after_quota(
        self, left: int | None, size: int, non_sync: bool, binary: bool, spool: bool
    ) -> Any:
        refusal = None
        if left is not None and self._append_bytes + size > left:
            refusal = Result("NO", "Quota exceeded", "OVERQUOTA")
        return self._accept_literal(size, non_sync, binary, spool, refusal)

    def _accept_literal(
        self, size: int, non_sync: bool, binary: bool, spool: bool, refusal: Result | None
    ) -> Any:
        """Refuse, or read the literal (into memory, or a spool file for big APPENDs)."""
        if refusal is not None and self._refused is None:
            if not non_sync:
                tag = self._cmd_tag
                self.reset_command()
                self.send_line(refusal.render(tag or "*"))
                return None
            self._refused, self._refused_tag = refusal, self._cmd_tag
        self._literal_binary = binary
        if spool and self._refused is None:
            d = self.run(_open_spool, self.spool_directory())
            d.addCallback(self._start_literal, size, non_sync)
            return d
        self._start_literal(None, size, non_sync)
        return None

    def _start_literal(self, spool: Any, size: int, non_sync: bool) -> None:
        if self.disconnecting:
            if spool is not None:
                spool.close()
            return
        if not non_sync:
            self.send_line("+ Ready for literal data")
        self._cmd_size += size
        self._spool = spool
        self._literal = bytearray() if self._refused is None and spool is None else None
        self._literal_left = self._literal_size = size
        if size == 0:
            self._literal_done()
        else:
            self.set_raw_mode(size)

    def raw_data_received(self, data: bytes) -> Any:
        self._literal_left -= len(data)
        if self._spool is not None and self._refused is None:
            if not self._literal_binary and b"\0" in data:
                self._refused, self._refused_tag = Result("BAD", "NUL in literal"), self._cmd_tag
            else:
                d = self.run(self._spool.write, data)
                if self._literal_left <= 0:
                    d.addCallback(lambda _: self._literal_done())
                return d
        elif self._literal is not None:
            self._literal += data
        if self._literal_left <= 0:
            self._literal_done()
        return None

    def _literal_done(self) -> None:
        if self._is_append and self._refused is None:
            self._append_bytes += self._literal_size
            self._append_count += 1
            if self._spool is None:
                self._append_memory += self._literal_size
        if self._spool is not None and self._refused is None:
            self._spool.seek(0)
            self._fragments.append(FileLiteral(self._spool, self._literal_size))
            self._spool = None
            return
        self._fragments.append(bytes(self._literal) if self._literal is not None else b"")
        self._literal = None

    # -- complete commands ------------------------------------------------------------
    def reset_command(self) -> None:
        """Forget a partly read command (closing its spool files)."""
        close_spools(self._fragments, self._spool)
        self._spool = None
        self._fragments = []
        self._cmd_size = 0
        self._literal = None
        self._refused = None
        self._refused_tag = ""
        self._is_append = False
        self._append_bytes = self._append_memory = self._append_count = 0

    def _command_complete(self) -> Any:
        fragments = self._fragments
        refused, refused_tag = self._refused, self._refused_tag
        self._fragments = []  # the spool files are closed after the command
        self.reset_command()
        if refused is not None:
            close_spools(fragments, None)
            self.send_line(refused.render(refused_tag or "*"))
            return None
        try:
            result = self.execute(fragments)
        except BaseException:
            close_spools(fragments, None)
            raise
        if isinstance(result, defer.Deferred):
            return result.addBoth(_pass_after, close_spools, fragments, None)
        close_spools(fragments, None)
        return result


def guess_tag(line: bytes) -> str:
    """The tag of a (possibly unparsable) command line, or ""."""
    head = line.split(b" ", 1)[0]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return text if TAG_RE.match(text) else ""


def _open_spool(directory: Path) -> IO[bytes]:
    """Pool thread: an anonymous temporary file under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=directory)


def close_spools(fragments: list[bytes], spool: Any) -> None:
    """Close spool files (anonymous temporary files: closing frees the disk space)."""
    for fragment in fragments:
        if isinstance(fragment, FileLiteral):
            fragment.file.close()
    if spool is not None:
        spool.close()


def _pass_after(result: Any, fn: Callable[..., Any], *args: Any) -> Any:
    fn(*args)
    return result
