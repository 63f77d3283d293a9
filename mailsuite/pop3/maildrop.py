"""The POP3 maildrop: a snapshot of INBOX taken at login.

RFC 1939 §4-§6: message numbers are fixed for the session; DELE only
marks; RSET unmarks; the marked messages are removed in the UPDATE state
(after QUIT) and nowhere else, so a dropped connection keeps every message.

The snapshot holds UIDs (DESIGN.md §4.1: storage speaks UIDs).  A message
expunged by another session (POP3, IMAP, another process) stays in the
listing, but opening it raises ``MailError(EXPUNGED)`` from the store,
which the session answers with -ERR: a number never reaches another message.

The blocking functions here run through ``context.runner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from twisted.logger import Logger

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Mailbox, Store

log = Logger()

#: message numbers beyond this cannot exist; longer digit strings are refused unparsed
_MAX_DIGITS = 10


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the snapshot."""

    uid: int
    size: int
    uidl: str
    seen: bool


@dataclass
class Maildrop:
    """A session's snapshot.  ``deleted`` and ``retrieved`` hold message numbers."""

    mailbox: Mailbox
    entries: list[Entry]
    deleted: set[int] = field(default_factory=set)
    retrieved: set[int] = field(default_factory=set)

    def stat(self) -> tuple[int, int]:
        """(messages, octets) not marked deleted (RFC 1939 §5 STAT)."""
        live = [e.size for n, e in self.numbered() if n not in self.deleted]
        return len(live), sum(live)

    def numbered(self) -> list[tuple[int, Entry]]:
        return list(enumerate(self.entries, 1))

    def get(self, arg: str) -> tuple[int, Entry]:
        """The message numbered by the argument ``arg``.

        Raises ``MailError(BAD_INPUT)`` unless ``arg`` is a decimal number
        from 1 to the message count that is not marked deleted.
        """
        number = parse_number(arg, "message number")
        if not 1 <= number <= len(self.entries):
            raise MailError(ErrorKind.BAD_INPUT, "No such message")
        if number in self.deleted:
            raise MailError(ErrorKind.BAD_INPUT, "Message is deleted")
        return number, self.entries[number - 1]

    def to_remove(self, expire_retrieved: bool) -> list[int]:
        """UIDs to expunge at QUIT: DELE-marked, plus retrieved ones under EXPIRE 0."""
        numbers = set(self.deleted)
        if expire_retrieved:
            numbers |= self.retrieved
        return [self.entries[n - 1].uid for n in sorted(numbers)]

    def to_mark_seen(self, expire_retrieved: bool) -> list[int]:
        """UIDs retrieved with RETR, not removed, and not yet \\Seen."""
        if expire_retrieved:
            return []
        return [
            self.entries[n - 1].uid
            for n in sorted(self.retrieved - self.deleted)
            if not self.entries[n - 1].seen
        ]


def parse_number(arg: str, what: str) -> int:
    """A non-negative decimal number of at most 10 digits; otherwise BAD_INPUT."""
    if not (arg.isascii() and arg.isdigit()):
        raise MailError(ErrorKind.BAD_INPUT, f"Invalid {what}")
    if len(arg) > _MAX_DIGITS:
        return int(10**_MAX_DIGITS)  # out of every range a caller accepts
    return int(arg)


# --------------------------------------------------------------------------
# Blocking parts (run through the runner)
# --------------------------------------------------------------------------
def load(store: Store, address: str) -> Maildrop:
    """Open and sync the account's INBOX and take the snapshot.  Blocking.

    An account that never received mail gets its folders created.  Raises
    MailError (IN_USE, TEMPORARY ...) from the store.
    """
    account = store.account(address)
    try:
        mailbox = account.open("INBOX")
    except MailError as e:
        if e.kind is not ErrorKind.NONEXISTENT:
            raise
        account.ensure_created()
        mailbox = account.open("INBOX")
    mailbox.sync()
    entries = [
        Entry(m.uid, m.size, mailbox.pop3_uidl(m.uid), "\\Seen" in m.flags)
        for m in mailbox.messages()
    ]
    return Maildrop(mailbox, entries)


def open_message(mailbox: Mailbox, uid: int, chunk_size: int) -> tuple[IO[bytes], bytes]:
    """Open a message and read its first chunk.  Blocking.

    Raises ``MailError(EXPUNGED)`` if another session removed it.  The file
    is closed already when the first chunk is the whole message.
    """
    source = mailbox.open_message(uid)
    try:
        first = source.read(chunk_size)
    except BaseException:
        source.close()
        raise
    if len(first) < chunk_size:
        source.close()
    return source, first


def update(mailbox: Mailbox, remove: list[int], seen: list[int]) -> list[int]:
    """The UPDATE state (RFC 1939 §6): mark ``remove`` \\Deleted and expunge
    exactly those UIDs; then add \\Seen to ``seen``.  Blocking.

    Messages already expunged elsewhere are skipped.  Returns the UIDs removed.
    Raises MailError if the removal fails (the caller answers -ERR).
    """
    removed: list[int] = []
    if remove:
        mailbox.sync()
        present = mailbox.store_flags(remove, ["\\Deleted"], "add")
        removed = mailbox.expunge(list(present))
    if seen:
        try:
            mailbox.store_flags(seen, ["\\Seen"], "add")
        except MailError:
            log.failure("marking retrieved messages \\Seen failed")
    return removed


def release(mailbox: Mailbox) -> None:
    """Let the view free what it holds (index connection), if it can.  Blocking."""
    close = getattr(mailbox, "close", None)
    if callable(close):
        close()
