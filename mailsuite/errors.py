"""Typed errors shared by every layer.

Rule (DESIGN.md §4.4): errors are typed inside and mapped to protocol replies
only at the edge (``smtp/replies.py``, ``pop3``, ``imap``).  ``public_text`` is
safe to show a client; it never contains a path, an exception message or a
user name that the client did not send.  Anything else is logged, not sent.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What went wrong, independent of the protocol that reports it."""

    # storage / delivery
    NONEXISTENT = "nonexistent"  # mailbox/folder/message does not exist
    ALREADY_EXISTS = "already-exists"
    BAD_NAME = "bad-name"  # folder name fails validation
    OVER_QUOTA = "over-quota"
    TOO_BIG = "too-big"
    EXPUNGED = "expunged"  # message removed by another session
    IN_USE = "in-use"  # lock could not be taken
    READ_ONLY = "read-only"
    UNKNOWN_MAILBOX = "unknown-mailbox"  # no such recipient / account
    # directory / auth
    AUTH_FAILED = "auth-failed"
    THROTTLED = "throttled"
    DISABLED = "disabled"
    BAD_ADDRESS = "bad-address"
    ALIAS_LOOP = "alias-loop"
    # generic
    TEMPORARY = "temporary"  # try again later (I/O error, lock timeout ...)
    BAD_INPUT = "bad-input"  # syntax/semantic error in what the client sent
    INTERNAL = "internal"  # a bug; logged with detail, client sees a generic text


class MailError(Exception):
    """An error of a known kind with a text that may be shown to a client.

    ``MailError(kind, public_text)``; ``detail`` is for the log only.
    """

    def __init__(self, kind: ErrorKind, public_text: str = "", detail: str = "") -> None:
        super().__init__(kind, public_text)
        self.kind = kind
        self.public_text = public_text or _DEFAULT_TEXT.get(kind, "Error")
        self.detail = detail

    @property
    def temporary(self) -> bool:
        """True when retrying later may succeed."""
        return self.kind in (ErrorKind.TEMPORARY, ErrorKind.IN_USE, ErrorKind.THROTTLED)

    def __repr__(self) -> str:
        return f"MailError({self.kind.name}, {self.public_text!r}, detail={self.detail!r})"

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.public_text}" + (
            f" ({self.detail})" if self.detail else ""
        )


_DEFAULT_TEXT = {
    ErrorKind.NONEXISTENT: "No such mailbox",
    ErrorKind.ALREADY_EXISTS: "Mailbox already exists",
    ErrorKind.BAD_NAME: "Invalid mailbox name",
    ErrorKind.OVER_QUOTA: "Quota exceeded",
    ErrorKind.TOO_BIG: "Message too big",
    ErrorKind.EXPUNGED: "Message was expunged",
    ErrorKind.IN_USE: "Mailbox is in use, try again later",
    ErrorKind.READ_ONLY: "Mailbox is read-only",
    ErrorKind.UNKNOWN_MAILBOX: "No such user",
    ErrorKind.AUTH_FAILED: "Authentication failed",
    ErrorKind.THROTTLED: "Too many failed logins, try again later",
    ErrorKind.DISABLED: "Authentication failed",
    ErrorKind.BAD_ADDRESS: "Invalid address",
    ErrorKind.ALIAS_LOOP: "Alias loop",
    ErrorKind.TEMPORARY: "Temporary failure, try again later",
    ErrorKind.BAD_INPUT: "Invalid input",
    ErrorKind.INTERNAL: "Internal error",
}


class ConfigError(Exception):
    """A configuration problem: the message names the file, key and what is allowed."""
