"""Every SMTP reply the server sends, and the one mapping from typed errors.

DESIGN.md §4.4: errors are typed inside (:class:`mailsuite.errors.MailError`)
and turned into reply codes only here.  Reply texts never contain exception
text, paths or user names the client did not send.

Enhanced status codes (RFC 2034, RFC 3463) are part of every reply except
the greeting, the EHLO/HELO answers and the 354/334 continuations, which RFC
2034 §3 exempts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mailsuite.errors import ErrorKind, MailError


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply; ``enhanced`` is "x.y.z" or "" (greeting, EHLO, 354, 334)."""

    code: int
    enhanced: str
    text: str

    def lines(self) -> tuple[bytes, ...]:
        """The wire lines (without CRLF); multi-line texts use ``code-`` continuations."""
        return _wire_lines(self)

    @property
    def is_error(self) -> bool:
        return self.code >= 400

    def with_text(self, text: str) -> Reply:
        return Reply(self.code, self.enhanced, text)


@functools.lru_cache(maxsize=256)  # most replies are the constants below
def _wire_lines(reply: Reply) -> tuple[bytes, ...]:
    parts = reply.text.split("\n")
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    last = len(parts) - 1
    return tuple(
        f"{reply.code}{' ' if i == last else '-'}{prefix}{part}".encode()
        for i, part in enumerate(parts)
    )


class Refused(Exception):
    """Raised by parsers and policy checks: refuse the command with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


# -- command level ----------------------------------------------------------
BYE = Reply(221, "2.0.0", "Bye")
NOOP = Reply(250, "2.0.0", "Ok")
RESET = Reply(250, "2.0.0", "Reset")
SENDER_OK = Reply(250, "2.1.0", "Sender ok")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient ok")
VRFY = Reply(252, "2.5.0", "Cannot verify the user, but will accept mail and attempt delivery")
HELP = Reply(214, "2.0.0", "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)")
START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")
TLS_GO = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")

UNRECOGNIZED = Reply(500, "5.5.2", "Command unrecognized")
BARE_CRLF_COMMAND = Reply(500, "5.5.2", "Bare CR or LF in command line not allowed")
LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")
BAD_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
NO_ARGUMENTS = Reply(501, "5.5.4", "This command takes no arguments")
HELO_REQUIRED = Reply(501, "5.5.4", "A domain or address literal is required")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
HELLO_FIRST = Reply(503, "5.5.1", "Send EHLO or HELO first")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already given")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command first")
NO_VALID_RCPT = Reply(554, "5.5.1", "No valid recipients")
ALREADY_TLS = Reply(503, "5.5.1", "TLS already active")
TLS_UNAVAILABLE = Reply(454, "4.7.0", "TLS not available")
ALREADY_AUTH = Reply(503, "5.5.1", "Already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not allowed during a mail transaction")
MIXED_DATA_BDAT = Reply(503, "5.5.1", "DATA and BDAT cannot be mixed")
BAD_PARAMETER = Reply(555, "5.5.4", "Unsupported parameter")
DUPLICATE_PARAMETER = Reply(501, "5.5.4", "Duplicate parameter")
BAD_PARAMETER_VALUE = Reply(501, "5.5.4", "Invalid parameter value")

# -- addresses and policy -----------------------------------------------------
BAD_ADDRESS = Reply(501, "5.1.3", "Invalid address syntax")
QUOTED_LOCALPART = Reply(553, "5.1.3", "Quoted local parts are not supported")
NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by the authenticated user")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
TLS_REQUIRED = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
TOO_MANY_RCPTS = Reply(452, "4.5.3", "Too many recipients")
QUEUE_UNAVAILABLE = Reply(451, "4.4.0", "Remote delivery is not available, try again later")
SIZE_AT_MAIL = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")

# -- AUTH (RFC 4954) ------------------------------------------------------------
AUTH_NOT_ENABLED = Reply(503, "5.5.1", "Authentication not enabled")
UNKNOWN_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode response")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")

# -- message content --------------------------------------------------------
BARE_CRLF_DATA = Reply(550, "5.6.11", "Bare CR or LF (or NUL) in message content not allowed")
TOO_BIG = Reply(552, "5.3.4", "Message too big")
DATA_LINE_TOO_LONG = Reply(554, "5.6.0", "Message line too long, closing connection")
BDAT_FAILED = Reply(554, "5.5.0", "Transaction failed; send RSET")
MESSAGE_LINE_TOO_LONG = Reply(554, "5.6.0", "Message line too long")
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax error in BDAT, closing connection")
CHUNK_OK = Reply(250, "2.0.0", "Chunk received")

# -- connection level --------------------------------------------------------
TIMEOUT = Reply(421, "4.4.2", "Timeout exceeded, closing connection")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
INTERNAL = Reply(421, "4.3.0", "Internal error, closing connection")
TEMPORARY = Reply(451, "4.3.0", "Temporary failure, try again later")


# -- typed errors -> replies ----------------------------------------------------
#: kind -> (code, enhanced code) for errors about one recipient or a message.
_ERROR_REPLIES: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.UNKNOWN_MAILBOX: (550, "5.1.1"),
    ErrorKind.NONEXISTENT: (550, "5.1.1"),
    ErrorKind.BAD_ADDRESS: (501, "5.1.3"),
    ErrorKind.ALIAS_LOOP: (550, "5.4.6"),
    ErrorKind.DISABLED: (550, "5.2.1"),
    # Mailbox full is a temporary condition for the sender: it retries later
    # rather than bouncing (Postfix/Dovecot "quota_full_tempfail" behaviour).
    ErrorKind.OVER_QUOTA: (452, "4.2.2"),
    ErrorKind.TOO_BIG: (552, "5.3.4"),
    ErrorKind.BAD_INPUT: (501, "5.5.4"),
    ErrorKind.AUTH_FAILED: (535, "5.7.8"),
    ErrorKind.THROTTLED: (454, "4.7.0"),
    ErrorKind.TEMPORARY: (451, "4.3.0"),
    ErrorKind.IN_USE: (451, "4.3.0"),
}

#: kinds whose public text is safe and useful to show as it is.
_SHOW_TEXT = {
    ErrorKind.UNKNOWN_MAILBOX,
    ErrorKind.BAD_ADDRESS,
    ErrorKind.ALIAS_LOOP,
    ErrorKind.TOO_BIG,
    ErrorKind.THROTTLED,
    ErrorKind.TEMPORARY,
    ErrorKind.IN_USE,
}

_ERROR_TEXT = {
    ErrorKind.UNKNOWN_MAILBOX: "Recipient address rejected: no such user",
    ErrorKind.NONEXISTENT: "Recipient address rejected: no such user",
    ErrorKind.DISABLED: "Mailbox disabled",
    ErrorKind.OVER_QUOTA: "Mailbox full, try again later",
    ErrorKind.AUTH_FAILED: "Authentication credentials invalid",
}


def from_error(error: BaseException | None) -> Reply:
    """The reply for an error raised below the protocol.

    A :class:`MailError` of a known kind maps through the table above; any
    other exception (a bug) and ``INTERNAL`` become a generic temporary
    failure so that the sender retries instead of bouncing.  The caller logs
    the detail; nothing of the exception reaches the client except a
    MailError's ``public_text`` for the kinds listed in ``_SHOW_TEXT``.
    """
    if not isinstance(error, MailError) or error.kind not in _ERROR_REPLIES:
        return TEMPORARY
    code, enhanced = _ERROR_REPLIES[error.kind]
    text = _ERROR_TEXT.get(error.kind, "")
    if error.kind in _SHOW_TEXT and error.public_text:
        text = error.public_text
    return Reply(code, enhanced, text or TEMPORARY.text)


def auth_error(error: BaseException | None) -> Reply:
    """The reply for a failed AUTH (RFC 4954 §6): 535 for bad credentials or
    a disabled account (same text, no user enumeration), 454 when throttled
    or on a temporary fault."""
    if isinstance(error, MailError):
        if error.kind in (ErrorKind.AUTH_FAILED, ErrorKind.DISABLED, ErrorKind.BAD_INPUT):
            return AUTH_FAILED
        if error.kind is ErrorKind.THROTTLED:
            return Reply(454, "4.7.0", "Too many failed attempts, try again later")
    return Reply(454, "4.7.0", "Temporary authentication failure")


def data_result(delivered: int, total: int, queue_id: str = "") -> Reply:
    """The 250 after a message was stored: says how many recipients got it."""
    noun = "recipient" if total == 1 else "recipients"
    count = f"{delivered}" if delivered == total else f"{delivered} of {total}"
    text = f"Ok: message accepted for {count} {noun}"
    if queue_id:
        text += f", queued as {queue_id}"
    return Reply(250, "2.0.0", text)


def all_failed(errors: list[Any]) -> Reply:
    """The reply when no recipient got the message.

    If every error is the same kind, its reply; otherwise any temporary
    failure wins (the sender retries the whole message: nothing was stored,
    so nothing is duplicated), else the first permanent one.
    """
    replies = [from_error(e) for e in errors] or [TEMPORARY]
    if len({(r.code, r.enhanced) for r in replies}) == 1:
        return replies[0]
    temporary = [r for r in replies if r.code < 500]
    return temporary[0] if temporary else replies[0]
