"""Commands valid in every state: CAPABILITY, NOOP, LOGOUT (RFC 3501 §6.1),
ID (RFC 2971), ENABLE (RFC 5161)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsuite import __version__ as _version
from mailsuite.imap import responses
from mailsuite.imap.command import ANY, AUTHENTICATED, Command, Request, Result, State, ok
from mailsuite.imap.commands import enable
from mailsuite.imap.parser import ParseError, expect_count

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_ID_MAX_PAIRS = 30


def capability(s: IMAPSession, req: Request) -> Result:
    """RFC 3501 §6.1.1."""
    expect_count(req.args, 0)
    s.untagged("CAPABILITY " + " ".join(s.capabilities()))
    return ok("CAPABILITY completed")


def noop(s: IMAPSession, req: Request) -> Result:
    """RFC 3501 §6.1.2: the session syncs and sends pending updates on completion."""
    expect_count(req.args, 0)
    return ok("NOOP completed")


def logout(s: IMAPSession, req: Request) -> Result:
    """RFC 3501 §6.1.3."""
    expect_count(req.args, 0)
    s.untagged("BYE Logging out")
    s.state = State.LOGOUT
    s.view = None
    return ok("LOGOUT completed")


def id_(s: IMAPSession, req: Request) -> Result:
    """RFC 2971: log the client's identification, answer with ours."""
    expect_count(req.args, 1)
    arg = req.args[0]
    if isinstance(arg, list):
        if len(arg) % 2 or len(arg) > 2 * _ID_MAX_PAIRS:
            raise ParseError("Invalid ID parameters")
        pairs = []
        for i in range(0, len(arg), 2):
            key, value = arg[i], arg[i + 1]
            if not isinstance(key, bytes) or isinstance(value, list):
                raise ParseError("Invalid ID parameters")
            shown = value.decode("utf-8", "replace")[:100] if isinstance(value, bytes) else "NIL"
            pairs.append(f"{key.decode('utf-8', 'replace')[:30]}={shown!r}")
        s.log.info("{cid} client id {pairs}", cid=s.conn_id, pairs=" ".join(pairs))
    elif not (isinstance(arg, str) and arg.upper() == "NIL"):
        raise ParseError("Invalid ID parameters")
    mine = b'("name" "mailsuite" "version" ' + responses.quoted(_version.encode()) + b")"
    s.untagged(b"ID " + mine)
    return ok("ID completed")


COMMANDS = (
    Command("CAPABILITY", capability, ANY),
    Command("NOOP", noop, ANY),
    Command("LOGOUT", logout, ANY),
    Command("ID", id_, ANY),
    Command("ENABLE", enable.enable, AUTHENTICATED),
)
