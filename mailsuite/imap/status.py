"""STATUS data items (RFC 3501 §6.3.10), shared by the STATUS command and
LIST ... RETURN (STATUS (...)) (RFC 5819).

Items: MESSAGES, RECENT, UIDNEXT, UIDVALIDITY, UNSEEN (RFC 3501), SIZE
(RFC 8438: the sum of the RFC822.SIZE of every message, the same sizes the
quota's STORAGE usage counts) APPENDLIMIT (RFC 7889 §3.1: the largest
message APPEND accepts, ``imap.max_literal_size``, the same for every
mailbox); DELETED and DELETED-STORAGE (RFC 9208 §4.1.4: the number and the
total RFC822.SIZE in octets of the messages flagged ``\\Deleted``, what an
EXPUNGE would free); HIGHESTMODSEQ (RFC 7162 §3.1.7, a CONDSTORE enabling
item: the STATUS command calls ``condstore.enable_condstore``).

* :func:`parse_items` checks the client's list (an unknown item is ``BAD``).
* :func:`compute` runs in a pool thread (it opens and syncs the folder).
* :func:`render` builds the untagged ``STATUS`` response.
"""

from __future__ import annotations

from typing import Any

from mailsuite.imap import responses
from mailsuite.imap.parser import ParseError, Token
from mailsuite.imap.selected import RecentTracker

ITEMS = (
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "SIZE",
    "APPENDLIMIT",
    "DELETED",
    "DELETED-STORAGE",
    "HIGHESTMODSEQ",
)


def parse_items(token: Token) -> list[str]:
    """The upper-case items of a non-empty parenthesised list, in order."""
    if not isinstance(token, list) or not token:
        raise ParseError("STATUS needs a list of items")
    wanted: list[str] = []
    for item in token:
        if not isinstance(item, str) or item.upper() not in ITEMS:
            raise ParseError("Unknown STATUS item")
        if item.upper() not in wanted:
            wanted.append(item.upper())
    return wanted


def compute(account: Any, name: str, tracker: RecentTracker, append_limit: int) -> dict[str, int]:
    """Pool thread: every item's value (RECENT: messages no session has seen).

    Raises what ``account.open`` raises (``NONEXISTENT``...).
    """
    mailbox = account.open(name)
    mailbox.sync()
    messages = mailbox.messages()
    key = (account.address, name, mailbox.uidvalidity)
    deleted = [m for m in messages if "\\Deleted" in m.flags]
    return {
        "MESSAGES": len(messages),
        "RECENT": len(tracker.claim(key, [m.uid for m in messages], take=False)),
        "UIDNEXT": mailbox.uidnext(),
        "UIDVALIDITY": mailbox.uidvalidity,
        "UNSEEN": sum(1 for m in messages if "\\Seen" not in m.flags),
        "SIZE": sum(m.size for m in messages),
        "APPENDLIMIT": append_limit,
        "DELETED": len(deleted),
        "DELETED-STORAGE": sum(m.size for m in deleted),
        "HIGHESTMODSEQ": mailbox.highest_modseq(),
    }


def render(name: str, wanted: list[str], values: dict[str, int]) -> bytes:
    """``STATUS "name" (ITEM n ...)`` without the leading ``* ``."""
    body = " ".join(f"{k} {values[k]}" for k in wanted)
    return b"STATUS " + responses.astring(name) + f" ({body})".encode()
