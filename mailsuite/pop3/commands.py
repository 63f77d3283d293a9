"""The POP3 command table: one handler per command with the states it is allowed in.

A handler is ``handler(session, arg) -> Deferred | None`` where ``arg`` is
the rest of the line after the keyword and one space.  Returning a
Deferred holds further (pipelined) input until it fires (RFC 2449 §6.6).
A handler raising ``MailError(BAD_INPUT)`` is answered ``-ERR <text>`` by
the session.  Commands not listed here (APOP, LAST, XTND ...) are unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsuite.pop3 import authorization as a
from mailsuite.pop3 import transaction as t
from mailsuite.pop3.states import AUTH_ONLY, BOTH, TRANSACTION_ONLY

if TYPE_CHECKING:
    from mailsuite.pop3.server import POP3Server


@dataclass(frozen=True, slots=True)
class Command:
    handler: Callable[[POP3Server, str], Any]
    states: frozenset[str]


COMMANDS: dict[str, Command] = {
    # RFC 2449 / RFC 2595 / RFC 5034 / RFC 1939 §7 (AUTHORIZATION)
    "CAPA": Command(a.cmd_capa, BOTH),
    "STLS": Command(a.cmd_stls, AUTH_ONLY),
    "AUTH": Command(a.cmd_auth, AUTH_ONLY),
    "USER": Command(a.cmd_user, AUTH_ONLY),
    "PASS": Command(a.cmd_pass, AUTH_ONLY),
    "QUIT": Command(t.cmd_quit, BOTH),
    # RFC 1939 §5 (TRANSACTION)
    "STAT": Command(t.cmd_stat, TRANSACTION_ONLY),
    "LIST": Command(t.cmd_list, TRANSACTION_ONLY),
    "UIDL": Command(t.cmd_uidl, TRANSACTION_ONLY),
    "RETR": Command(t.cmd_retr, TRANSACTION_ONLY),
    "TOP": Command(t.cmd_top, TRANSACTION_ONLY),
    "DELE": Command(t.cmd_dele, TRANSACTION_ONLY),
    "RSET": Command(t.cmd_rset, TRANSACTION_ONLY),
    "NOOP": Command(t.cmd_noop, TRANSACTION_ONLY),
}
