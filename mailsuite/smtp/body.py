"""Message content framing for DATA and BDAT, and the checks on content.

Pure byte processing, no I/O: the session feeds what the socket delivered
and flushes :attr:`ContentChecker.pending` to the delivery in batches.

* :class:`DotDecoder` — DATA (RFC 5321 §4.1.1.4, §4.5.2): only
  ``<CRLF>.<CRLF>`` ends the content (the CRLF before the dot belongs to the
  message); a leading dot of any other line is removed.  A line is what lies
  between two CRLFs, so bare CR or LF can never end a line or the data (no
  SMTP smuggling: ``\\n.\\n``, ``\\r.\\r``, ``\\r\\n.\\n`` ... are content).
* :class:`ChunkDecoder` — BDAT (RFC 3030): the same line splitting without
  dot handling, carried across chunks.
* :class:`ContentChecker` — counts the size (what the client sent, before
  our changes), flags bare CR, bare LF and NUL anywhere in the content
  (the message is then refused after its end, RFC 5321 §2.3.8), flags lines
  over the limit, and removes ``Return-Path`` fields from the header section
  (RFC 5321 §4.4: the delivering server adds the only one).
"""

from __future__ import annotations

CRLF = b"\r\n"


class DotDecoder:
    """Splits DATA input into content lines (dot-unstuffed, CRLF removed).

    After :meth:`feed`: ``ended`` is True once the terminating line was
    seen, and ``leftover`` holds the bytes after it (pipelined commands);
    ``too_long`` is True when a line exceeds ``max_line`` octets (the
    caller fails the message and closes: resynchronising is not safe).
    Buffered input is at most one partial line of ``max_line`` octets.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.ended = False
        self.too_long = False
        self.leftover = b""
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._partial + data if self._partial else data
        parts = buf.split(CRLF)
        self._partial = parts.pop()
        if buf[:1] == b"." or b"\r\n." in buf:
            for i, line in enumerate(parts):
                if line[:1] != b".":
                    continue
                if len(line) == 1:
                    self.ended = True
                    self.leftover = CRLF.join([*parts[i + 1 :], self._partial])
                    self._partial = b""
                    del parts[i:]
                    break
                parts[i] = line[1:]
        if len(self._partial) > self.max_line or (parts and max(map(len, parts)) > self.max_line):
            self.too_long = True
        return parts


class ChunkDecoder:
    """Splits BDAT chunk data into lines, carrying a partial line across
    chunks.  :meth:`finish` returns the last line if the content did not end
    with CRLF (it is then stored with one).  ``too_long`` as in DotDecoder."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.too_long = False
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._partial + data if self._partial else data
        parts = buf.split(CRLF)
        self._partial = parts.pop()
        if len(self._partial) > self.max_line:
            self.too_long = True
            self._partial = self._partial[-1:]  # keep a possible CR of a split CRLF
        if parts and max(map(len, parts)) > self.max_line:
            self.too_long = True
        return parts

    def finish(self) -> list[bytes]:
        last, self._partial = self._partial, b""
        return [last] if last else []


class ContentChecker:
    """Checks content lines and collects what is to be stored in ``pending``.

    Once the size passes ``max_size`` (``too_big``) or a bad character was
    seen (``bad_chars``), nothing more is collected: the message will be
    refused, and the caller stops writing it.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self.pending = bytearray()
        self.bad_chars = False
        self.too_big = False
        self._in_header = True
        self._dropping = False

    @property
    def failed(self) -> bool:
        return self.bad_chars or self.too_big

    def add_lines(self, lines: list[bytes]) -> None:
        if not lines:
            return
        blob = CRLF.join(lines) + CRLF
        self.size += len(blob)
        if self.failed:
            return
        n = len(lines)
        if blob.count(b"\r") != n or blob.count(b"\n") != n or b"\0" in blob:
            self.bad_chars = True
        elif self.size > self.max_size:
            self.too_big = True
        if self.failed:
            self.pending.clear()
            return
        if self._in_header:
            # Only the header part of the batch is searched (and lowered).
            if blob[:2] == CRLF:
                end = 0  # the first line is the empty line ending the header
            else:
                at = blob.find(b"\r\n\r\n")
                end = at + 2 if at >= 0 else -1
            head = blob if end < 0 else blob[:end]
            if self._dropping or b"return-path" in head.lower():
                lines = self._filter_header(lines)
                blob = CRLF.join(lines) + CRLF if lines else b""
            elif end >= 0:
                self._in_header = False  # the header ended in this batch
        self.pending += blob

    def _filter_header(self, lines: list[bytes]) -> list[bytes]:
        """Drop Return-Path fields (with their folded lines) from the header."""
        out: list[bytes] = []
        for i, line in enumerate(lines):
            if not line:
                self._in_header = False
                out.extend(lines[i:])
                break
            if line[:1] in (b" ", b"\t"):
                if not self._dropping:
                    out.append(line)
                continue
            name = line.split(b":", 1)[0].strip().lower()
            self._dropping = name == b"return-path"
            if not self._dropping:
                out.append(line)
        return out

    def take(self) -> bytes:
        """The collected bytes, emptying ``pending``."""
        data = bytes(self.pending)
        self.pending.clear()
        return data
