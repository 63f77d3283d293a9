"""Selected-state commands: CHECK, CLOSE, EXPUNGE, STORE, COPY, UID
(RFC 3501 §6.4), UNSELECT (RFC 3691), MOVE (RFC 6851), UID EXPUNGE and
COPYUID (RFC 4315).  FETCH, SEARCH and IDLE have their own modules.

EXAMINE'd mailboxes are read-only: STORE, EXPUNGE and MOVE answer
``NO [READ-ONLY]`` and CLOSE expunges nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore
from mailsuite.imap.args import mailbox_name, parse_flags
from mailsuite.imap.command import SELECTED, Command, Request, Result, State, no, ok
from mailsuite.imap.commands import condstore as condstore_cmds
from mailsuite.imap.commands import fetch as fetch_cmd
from mailsuite.imap.commands import idle as idle_cmd
from mailsuite.imap.commands import search as search_cmd
from mailsuite.imap.parser import ParseError, atom, expect_count, parse_sequence_set

if TYPE_CHECKING:
    from mailsuite.imap.selected import SelectedView
    from mailsuite.imap.server import IMAPSession

_STORE_MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}


def _view(s: IMAPSession) -> SelectedView:
    assert s.view is not None
    return s.view


def _read_only() -> Result:
    return no("Mailbox is read-only", "READ-ONLY")


def check(s: IMAPSession, req: Request) -> Result:
    """RFC 3501 §6.4.1: a sync point; updates follow on completion (every
    store write is already durable)."""
    expect_count(req.args, 0)
    return ok("CHECK completed")


def close(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.4.2: expunge silently (read-write only), then deselect."""
    expect_count(req.args, 0)
    view = _view(s)
    s.view = None
    s.state = State.AUTHENTICATED
    if view.readonly:
        return ok("CLOSE completed")
    return s.run(view.mailbox.expunge).addCallback(lambda _: ok("CLOSE completed"))


def unselect(s: IMAPSession, req: Request) -> Result:
    """RFC 3691: deselect without expunging."""
    expect_count(req.args, 0)
    s.view = None
    s.state = State.AUTHENTICATED
    return ok("UNSELECT completed")


def expunge(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.4.3; ``UID EXPUNGE set`` (RFC 4315 §2.1)."""
    view = _view(s)
    uids = None
    if req.uid:
        expect_count(req.args, 1)
        uids = [view.uids[i] for i in view.select_uids(parse_sequence_set(req.args[0]))]
    else:
        expect_count(req.args, 0)
    if view.readonly:
        return _read_only()
    d = s.run(_expunge, view.mailbox, uids)

    def done(outcome: tuple[list[int], int]) -> Result:
        removed, highest = outcome
        view.note_expunged(removed)
        view.highest_modseq = max(view.highest_modseq, highest)
        return ok("EXPUNGE completed")

    return d.addCallback(done)


def _expunge(mailbox: Any, uids: list[int] | None) -> tuple[list[int], int]:
    """Pool thread: expunge; the removed UIDs and the new HIGHESTMODSEQ."""
    removed = list(mailbox.expunge(uids))
    return removed, int(mailbox.highest_modseq())


def store(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.4.6 ``STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags``
    (RFC 7162 §3.1.3; the work is in :func:`.condstore.store`)."""
    view = _view(s)
    args = req.args
    since = None
    if len(args) > 1 and isinstance(args[1], list):
        since = condstore.parse_store_modifiers(args[1])
        args = [args[0], *args[2:]]
    if len(args) < 3:
        raise ParseError("STORE needs a set, an item and flags")
    seqset = parse_sequence_set(args[0])
    item = atom(args[1], "STORE item").upper()
    silent = item.endswith(".SILENT")
    mode = _STORE_MODES.get(item.removesuffix(".SILENT"))
    if mode is None:
        raise ParseError("Invalid STORE item")
    flag_args = args[2:]
    flags = parse_flags(flag_args[0] if len(flag_args) == 1 else list(flag_args))
    indices = view.select(seqset, req.uid)
    if view.readonly:
        return _read_only()
    return condstore_cmds.store(s, req, indices, (flags, mode), silent, since)


def copy(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.4.7 with COPYUID (RFC 4315 §3)."""
    return _copy(s, req, move=False)


def move(s: IMAPSession, req: Request) -> Any:
    """RFC 6851: copy, then expunge the originals (EXPUNGE responses follow)."""
    return _copy(s, req, move=True)


def _copy(s: IMAPSession, req: Request, move: bool) -> Any:
    view = _view(s)
    expect_count(req.args, 2)
    seqset = parse_sequence_set(req.args[0])
    dest = mailbox_name(req.args[1])
    indices = view.select(seqset, req.uid)
    if move and view.readonly:
        return _read_only()
    uids = [view.uids[i] for i in indices if view.live(view.uids[i])]
    skipped = len(uids) < len(indices)
    if not uids:
        return no("Some messages were expunged", "EXPUNGEISSUED") if skipped else ok("No messages")
    d = s.run(_copy_messages, s.account, view.mailbox, uids, dest, move)

    def done(result: tuple[int, dict[int, int], list[int], int]) -> Result:
        uidvalidity, mapping, removed, highest = result
        view.highest_modseq = max(view.highest_modseq, highest)
        if dest == view.name:
            view.dirty = True
        code = None
        if mapping:
            src = sorted(mapping)
            code = f"COPYUID {uidvalidity} {_uid_set(src)} {_uid_set([mapping[u] for u in src])}"
        if move:
            view.note_expunged(removed)
            if code:
                s.untagged(f"OK [{code}] Moved")
                code = None
        if skipped or len(mapping) < len(uids):
            return no("Some messages were expunged", "EXPUNGEISSUED")
        return ok(f"{req.name} completed", code)

    def failed(f: Any) -> Any:
        if f.check(MailError) and f.value.kind is ErrorKind.NONEXISTENT:
            return no("Mailbox does not exist", "TRYCREATE")
        return f

    return d.addCallbacks(done, failed)


def _copy_messages(
    account: Any, source: Any, uids: list[int], dest_name: str, move: bool
) -> tuple[int, dict[int, int], list[int], int]:
    """Pool thread: copy (and for MOVE flag \\Deleted and expunge exactly
    those); (dest UIDVALIDITY, UID map, UIDs removed, source HIGHESTMODSEQ
    after a MOVE that removed some, else 0)."""
    dest = account.open(dest_name)
    mapping = dict(source.copy_to(uids, dest))
    removed: list[int] = []
    if move and mapping:
        moved = sorted(mapping)
        source.store_flags(moved, ["\\Deleted"], "add")
        removed = list(source.expunge(moved))
    return dest.uidvalidity, mapping, removed, int(source.highest_modseq()) if removed else 0


def _uid_set(uids: list[int]) -> str:
    """Compact ``1:3,7`` form of UIDs in the given order (RFC 4315 §3)."""
    parts: list[str] = []
    start = prev = None
    for uid in uids:
        if start is None:
            start = prev = uid
        elif prev is not None and uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


_UID_COMMANDS: dict[str, Any] = {}


def uid(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.4.8 ``UID FETCH|STORE|SEARCH|COPY|MOVE|EXPUNGE ...``."""
    if not req.args or not isinstance(req.args[0], str):
        raise ParseError("UID needs a command")
    name = req.args[0].upper()
    handler = _UID_COMMANDS.get(name)
    if handler is None:
        raise ParseError("Unknown UID command")
    return handler(s, Request(req.tag, f"UID {name}", req.args[1:], uid=True))


_UID_COMMANDS.update(
    {
        "FETCH": fetch_cmd.fetch,
        "STORE": store,
        "SEARCH": search_cmd.search,
        "COPY": copy,
        "MOVE": move,
        "EXPUNGE": expunge,
    }
)

COMMANDS = (
    Command("CHECK", check, SELECTED),
    Command("CLOSE", close, SELECTED),
    Command("UNSELECT", unselect, SELECTED),
    Command("EXPUNGE", expunge, SELECTED),
    Command("SEARCH", search_cmd.search, SELECTED, expunge_ok=False),
    Command("FETCH", fetch_cmd.fetch, SELECTED, expunge_ok=False),
    Command("STORE", store, SELECTED, expunge_ok=False),
    Command("COPY", copy, SELECTED),
    Command("MOVE", move, SELECTED),
    Command("UID", uid, SELECTED),
    Command("IDLE", idle_cmd.idle, frozenset({State.AUTHENTICATED, State.SELECTED})),
)
