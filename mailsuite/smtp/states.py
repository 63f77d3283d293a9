"""Session states of the SMTP server (RFC 5321 §3.3, §4.1.4)."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Where a session is; the command table lists the states each command
    is allowed in.

    INIT: connected (or after STARTTLS), no EHLO/HELO yet.
    READY: greeted, no transaction.
    MAIL: MAIL accepted, no recipient yet.
    RCPT: at least one recipient accepted.
    CHUNKING: a BDAT chunk was accepted, more may follow (RFC 3030).
    """

    INIT = "init"
    READY = "ready"
    MAIL = "mail"
    RCPT = "rcpt"
    CHUNKING = "chunking"


ANY = frozenset(State)
