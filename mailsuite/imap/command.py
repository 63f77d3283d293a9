"""Types shared by the session and the command modules.

A command is a :class:`Command` entry (name, handler, allowed states) in the
explicit table of :mod:`mailsuite.imap.server`.  A handler receives the
session and a :class:`Request` and returns a :class:`Result` (or a Deferred
firing with one); the session then sends the pending untagged updates and
the tagged line.  A handler that needs more client lines (AUTHENTICATE,
IDLE) returns :data:`CONTINUE` and later calls ``session.complete``.

Raising :class:`mailsuite.imap.parser.ParseError` means ``BAD``; raising
:class:`mailsuite.errors.MailError` means ``NO [code]`` (mapped in
:mod:`mailsuite.imap.responses`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from twisted.internet.defer import Deferred

from mailsuite.imap.parser import Token

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession


class State(enum.Enum):
    """RFC 3501 §3 connection states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTHENTICATED = frozenset({State.NOT_AUTHENTICATED})
AUTHENTICATED = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


@dataclass(slots=True)
class Request:
    """One parsed command: ``tag``, upper-case ``name``, argument tokens.

    ``uid`` is True for the UID forms (``UID FETCH`` ...), which use UIDs
    instead of sequence numbers and may be answered with EXPUNGE (§7.4.1).
    """

    tag: str
    name: str
    args: list[Token]
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """The tagged completion: ``status`` OK/NO/BAD, optional response code."""

    status: str = "OK"
    text: str = "completed"
    code: str | None = None

    def render(self, tag: str) -> str:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}"


def ok(text: str = "completed", code: str | None = None) -> Result:
    return Result("OK", text, code)


def no(text: str, code: str | None = None) -> Result:
    return Result("NO", text, code)


def bad(text: str, code: str | None = None) -> Result:
    return Result("BAD", text, code)


class _Continue:
    """Marker: the handler finishes the command later through ``session.complete``."""

    def __repr__(self) -> str:
        return "CONTINUE"


CONTINUE = _Continue()

Outcome = Union[Result, "Deferred[Result]", _Continue]
Handler = Callable[["IMAPSession", Request], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """A command table entry.

    ``expunge_ok`` False for FETCH, STORE and SEARCH: pending EXPUNGE
    responses wait for a later command (RFC 3501 §7.4.1).
    """

    name: str
    handler: Handler
    states: frozenset[State]
    expunge_ok: bool = True
