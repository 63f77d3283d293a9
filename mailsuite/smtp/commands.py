"""The command table and the session-level commands (RFC 5321 §4.1.1).

:data:`COMMANDS` maps each verb to its handler and the states it is allowed
in; a command in any other state gets the table's refusal without its
handler running.  Handlers take ``(session, args)``, send their replies
themselves and return None or a Deferred (input is held until it fires).
They may raise :class:`mailsuite.smtp.replies.Refused`.

Here: EHLO/HELO (§4.1.1.1), RSET (§4.1.1.5), NOOP (§4.1.1.9), QUIT
(§4.1.1.10), VRFY (§3.5.3: 252, never revealing users), EXPN (not
implemented), HELP (§4.1.1.8) and STARTTLS (RFC 3207).  MAIL and RCPT live
in :mod:`mailsuite.smtp.envelope`, DATA and BDAT in
:mod:`mailsuite.smtp.content`, AUTH in :mod:`mailsuite.smtp.auth`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailsuite.smtp import auth, content, envelope, replies
from mailsuite.smtp.replies import Reply
from mailsuite.smtp.states import ANY, State

if TYPE_CHECKING:
    from mailsuite.smtp.session import SMTPSession

Handler = Callable[["SMTPSession", str], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """A verb's handler, its allowed states and the reply for the others."""

    handler: Handler
    states: frozenset[State]
    wrong_state: Reply = replies.BAD_SEQUENCE
    special: tuple[tuple[State, Reply], ...] = ()  # per-state refusals

    def refusal(self, state: State) -> Reply | None:
        if state in self.states:
            return None
        for refused_state, reply in self.special:
            if state is refused_state:
                return reply
        if state is State.INIT:
            return replies.HELLO_FIRST
        return self.wrong_state


_HELO_ARG = re.compile(r"\S+")


def _greet(session: SMTPSession, args: str, esmtp: bool) -> str | None:
    arg = args.strip()
    if not _HELO_ARG.fullmatch(arg):
        session.reply(replies.HELO_REQUIRED)
        return None
    session.end_transaction()
    session.state = State.READY
    session.helo = arg
    session.esmtp = esmtp
    return arg


def ehlo_keywords(session: SMTPSession) -> list[str]:
    """The extensions this session offers now (RFC 5321 §4.1.1.1)."""
    words = [
        "PIPELINING",
        f"SIZE {session.config.max_message_size}",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ]
    if session.starttls_available():
        words.append("STARTTLS")
    if session.auth_allowed() and session.user is None:
        words.append("AUTH " + " ".join(auth.mechanisms()))
    return words


def cmd_ehlo(session: SMTPSession, args: str) -> None:
    if _greet(session, args, esmtp=True) is None:
        return
    lines = [session.hostname, *ehlo_keywords(session)]
    session.reply(Reply(250, "", "\n".join(lines)))


def cmd_helo(session: SMTPSession, args: str) -> None:
    if _greet(session, args, esmtp=False) is not None:
        session.reply(Reply(250, "", session.hostname))


def cmd_rset(session: SMTPSession, args: str) -> None:
    if args.strip():
        session.reply(replies.NO_ARGUMENTS)
        return
    session.end_transaction()
    session.reply(replies.RESET)


def cmd_noop(session: SMTPSession, args: str) -> None:
    session.reply(replies.NOOP)


def cmd_quit(session: SMTPSession, args: str) -> None:
    if args.strip():
        session.reply(replies.NO_ARGUMENTS)
        return
    session.reply(replies.BYE)
    session.end_transaction()
    session.close()


def cmd_vrfy(session: SMTPSession, args: str) -> None:
    session.reply(replies.VRFY if args.strip() else replies.BAD_SYNTAX)


def cmd_expn(session: SMTPSession, args: str) -> None:
    session.reply(replies.NOT_IMPLEMENTED)


def cmd_help(session: SMTPSession, args: str) -> None:
    session.reply(replies.HELP)


def cmd_starttls(session: SMTPSession, args: str) -> None:
    """RFC 3207: 220, then TLS; plaintext pipelined after the command is
    discarded by ``start_tls`` and the session forgets everything (§4.2)."""
    if args.strip():
        session.reply(replies.NO_ARGUMENTS)
        return
    if session.tls_active:
        session.reply(replies.ALREADY_TLS)
        return
    if session.context.tls is None:
        session.reply(replies.TLS_UNAVAILABLE)
        return
    session.reply(replies.TLS_GO)
    session.reset_session()
    session.start_tls()
    session.log.info("{cid} STARTTLS", cid=session.conn_id)


_IDLE = frozenset({State.INIT, State.READY})

COMMANDS: dict[str, Command] = {
    "EHLO": Command(cmd_ehlo, ANY),
    "HELO": Command(cmd_helo, ANY),
    "STARTTLS": Command(cmd_starttls, _IDLE, replies.BAD_SEQUENCE),
    "AUTH": Command(auth.cmd_auth, frozenset({State.READY}), replies.AUTH_IN_TRANSACTION),
    "MAIL": Command(envelope.cmd_mail, frozenset({State.READY}), replies.NESTED_MAIL),
    "RCPT": Command(
        envelope.cmd_rcpt,
        frozenset({State.MAIL, State.RCPT}),
        replies.NEED_MAIL,
        ((State.CHUNKING, replies.BAD_SEQUENCE),),
    ),
    "DATA": Command(
        content.cmd_data,
        frozenset({State.RCPT}),
        replies.NEED_MAIL,
        ((State.MAIL, replies.NO_VALID_RCPT), (State.CHUNKING, replies.MIXED_DATA_BDAT)),
    ),
    # BDAT must consume its chunk whatever the state: the handler refuses it
    # after reading the octets (RFC 3030 §2), so it is allowed everywhere.
    "BDAT": Command(content.cmd_bdat, ANY),
    "RSET": Command(cmd_rset, ANY),
    "NOOP": Command(cmd_noop, ANY),
    "QUIT": Command(cmd_quit, ANY),
    "VRFY": Command(cmd_vrfy, ANY),
    "EXPN": Command(cmd_expn, ANY),
    "HELP": Command(cmd_help, ANY),
}
