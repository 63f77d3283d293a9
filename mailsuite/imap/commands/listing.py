"""LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258), LIST-STATUS
(RFC 5819), CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154), and LSUB
(§6.3.9).

Arguments and the choice of responses are :mod:`mailsuite.imap.listext`;
patterns are :mod:`mailsuite.imap.patterns`.  This module does the I/O:
folders and subscriptions are read in one pool call, and for RETURN
(STATUS (...)) each mailbox's STATUS values in a pool call of its own, in
order, so a long listing never blocks the reactor.  A mailbox whose STATUS
cannot be read (deleted meanwhile) gets ``\\Noselect`` and no STATUS
response (RFC 5819 §2).

Subscriptions: the storage's ``Account.subscriptions()`` (every subscribed
name, also of mailboxes that no longer exist) when it has one, else the
``subscribed`` flag of the existing folders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import listext, responses
from mailsuite.imap import status as status_items
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, ok
from mailsuite.imap.parser import ParseError, astring_text
from mailsuite.imap.patterns import DELIMITER, ancestors, matches
from mailsuite.imap.selected import RecentTracker
from mailsuite.interfaces import FolderInfo

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession


def list_(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.8 and RFC 5258 §3."""
    lreq = listext.parse(req.args)
    if not lreq.extended and lreq.patterns == ("",):
        s.untagged(f'LIST (\\Noselect) "{DELIMITER}" ""')
        return ok("LIST completed")
    d = s.run(_folders_and_subscriptions, s.account)

    def answer(found: tuple[list[FolderInfo], list[str]]) -> Any:
        entries = listext.select_entries(lreq, *found)
        if not lreq.status:
            s.send(b"".join(b"* " + listext.render(e) + b"\r\n" for e in entries))
            return ok("LIST completed")
        return defer.ensureDeferred(_with_status(s, entries, list(lreq.status)))

    return d.addCallback(answer)


def _folders_and_subscriptions(account: Any) -> tuple[list[FolderInfo], list[str]]:
    """Pool thread: the existing folders and the subscribed names."""
    return list(account.folders()), list(account.subscriptions())


async def _with_status(s: IMAPSession, entries: list[listext.Entry], wanted: list[str]) -> Result:
    """RFC 5819 §2: each LIST response, then its STATUS response."""
    tracker = s.context.extras.setdefault("imap.recent", RecentTracker())
    limit = int(s.config.max_literal_size)
    for entry in entries:
        if s.disconnecting:
            break
        values = None
        if entry.status:
            try:
                values = await s.run(status_items.compute, s.account, entry.name, tracker, limit)
            except MailError as e:
                if e.kind is not ErrorKind.NONEXISTENT:
                    raise
                entry.attrs.insert(0, "\\Noselect")
        s.untagged(listext.render(entry))
        if values is not None:
            s.untagged(status_items.render(entry.name, wanted, values))
    return ok("LIST completed")


def lsub(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.9: subscribed names; a matching parent that is not
    subscribed itself is shown ``\\Noselect`` when ``%`` hides the child."""
    if len(req.args) != 2:
        raise ParseError("LSUB needs a reference and a mailbox pattern")
    reference = astring_text(req.args[0], "reference")
    pattern = astring_text(req.args[1], "pattern")
    d = s.run(s.account.folders)

    def answer(folders: list[FolderInfo]) -> Result:
        full = reference + pattern
        subscribed = [f for f in folders if f.subscribed]
        shown = set()
        for f in subscribed:
            if matches(full, f.name):
                _send(s, "LSUB", [], f.name)
                shown.add(f.name)
        for f in subscribed:
            for parent in ancestors(f.name):
                if parent not in shown and matches(full, parent) and "%" in full:
                    _send(s, "LSUB", ["\\Noselect"], parent)
                    shown.add(parent)
        return ok("LSUB completed")

    return d.addCallback(answer)


def _send(s: IMAPSession, what: str, attrs: list[str], name: str) -> None:
    head = f'{what} ({" ".join(attrs)}) "{DELIMITER}" '.encode()
    s.untagged(head + responses.astring(name))


COMMANDS = (
    Command("LIST", list_, AUTHENTICATED),
    Command("LSUB", lsub, AUTHENTICATED),
)
