"""Authenticated-state mailbox commands: SELECT, EXAMINE, CREATE, DELETE,
RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS (RFC 3501 §6.3), NAMESPACE (RFC 2342).

LIST and LSUB live in :mod:`.listing`, APPEND in :mod:`.append`.  Names are
passed to the storage as the client sent them (modified UTF-7, ``/``
delimiter); the storage validates them and raises ``BAD_NAME``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore, responses
from mailsuite.imap import status as status_items
from mailsuite.imap.args import mailbox_name
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, State, no, ok
from mailsuite.imap.commands import append, listing, qresync
from mailsuite.imap.parser import expect_count
from mailsuite.imap.selected import RecentTracker, SelectedView
from mailsuite.interfaces import SYSTEM_FLAGS, MessageInfo
from mailsuite.storage.messages import MessageList

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession


def select(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.1 SELECT."""
    return _open(s, req, readonly=False)


def examine(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.2 EXAMINE: the view is read-only (no \\Seen, no STORE)."""
    return _open(s, req, readonly=True)


def _open(s: IMAPSession, req: Request, readonly: bool) -> Any:
    """SELECT/EXAMINE ``name [(CONDSTORE) | (QRESYNC (...))]`` (RFC 7162 §3.1.8, §3.2.5)."""
    expect_count(req.args, 1, 2)
    name = mailbox_name(req.args[0])
    params = condstore.parse_select_params(s, req.args[1]) if len(req.args) == 2 else None
    if s.view is not None:
        s.untagged("OK [CLOSED] Previous mailbox closed")  # RFC 7162 §3.2.11
    s.view = None  # the previous mailbox is closed without expunge (§6.3.1)
    s.state = State.AUTHENTICATED
    if params is not None and params.condstore:
        condstore.enable_condstore(s)
    tracker = s.context.extras.setdefault("imap.recent", RecentTracker())
    d = s.run(_open_view, s.account, name, readonly, tracker)

    def opened(found: tuple[SelectedView, list[str], int, int]) -> Any:
        view, keywords, unseen, uidnext = found
        flags = responses.flag_list([*SYSTEM_FLAGS, *keywords])
        s.untagged(f"FLAGS {flags}")
        permanent = "()" if readonly else responses.flag_list([*SYSTEM_FLAGS, *keywords, "\\*"])
        s.untagged(f"OK [PERMANENTFLAGS {permanent}] Flags permitted")
        s.untagged(f"{view.exists} EXISTS")
        s.untagged(f"{len(view.recent)} RECENT")
        if unseen:
            s.untagged(f"OK [UNSEEN {unseen}] First unseen")
        s.untagged(f"OK [UIDVALIDITY {view.mailbox.uidvalidity}] UIDs valid")
        s.untagged(f"OK [UIDNEXT {uidnext}] Predicted next UID")
        s.view = view
        s.state = State.SELECTED
        condstore.configure_view(s, view)
        if view.condstore:
            s.untagged(f"OK [HIGHESTMODSEQ {view.highest_modseq}] Highest")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        result = ok(f"{req.name} completed", mode)
        if params is not None and params.qresync is not None:
            return qresync.resync(s, view, params.qresync).addCallback(lambda _: result)
        return result

    d.addCallback(opened)
    return d


def _open_view(
    account: Any, name: str, readonly: bool, tracker: RecentTracker
) -> tuple[SelectedView, list[str], int, int]:
    """Pool thread: open and sync a folder and build the view (O(n) work stays
    off the reactor); (view, keywords in use, first unseen seq, uidnext).

    ``\\Recent``: messages no session was told about are recent here; SELECT
    claims them, EXAMINE leaves them for a read-write session (RFC 3501 §2.3.2).
    """
    mailbox = account.open(name)
    mailbox.sync()
    messages = mailbox.messages()  # kept by the view as it is (lazy items)
    key = (account.address, name, mailbox.uidvalidity)

    def claim(uids: Sequence[int]) -> set[int]:
        return tracker.claim(key, uids, take=not readonly)

    view = SelectedView(name, mailbox, readonly, messages, (), claim)
    view.recent = claim(view.uids)
    view.recent_sent = len(view.recent)
    condstore.after_sync(view, mailbox)
    view.known_modseq = view.highest_modseq
    keywords, unseen = _keywords_and_unseen(mailbox, messages)
    return view, keywords, unseen, mailbox.uidnext()


def _keywords_and_unseen(mailbox: Any, messages: Sequence[MessageInfo]) -> tuple[list[str], int]:
    """Keywords in use and the first unseen sequence number (0: none), without
    making an object per message when the store gives a MessageList (and
    without looking at every message when the folder defines no keyword)."""
    if isinstance(messages, MessageList):
        defined = getattr(mailbox, "defined_keywords", None)
        none = defined is not None and not defined()
        sets = set() if none else messages.distinct_flags()
        first = messages.first_without("\\Seen") + 1
    else:
        sets = {m.flags for m in messages}
        first = next((i for i, m in enumerate(messages, 1) if "\\Seen" not in m.flags), 0)
    keywords = sorted({f for flags in sets for f in flags if not f.startswith("\\")})
    return keywords, first


def create(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.3: a trailing delimiter is dropped; missing superior
    names are created too."""
    expect_count(req.args, 1)
    name = mailbox_name(req.args[0])
    if name != "/":
        name = name.rstrip("/")
    if name == "INBOX":
        return no("INBOX always exists", "ALREADYEXISTS")
    return s.run(_create, s.account, name).addCallback(lambda _: ok("CREATE completed"))


def _create(account: Any, name: str) -> None:
    """Pool thread: create ``name`` after its missing parents."""
    parts = name.split("/")
    if len(parts) > 1 and all(parts):
        existing = {f.name for f in account.folders()}
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in existing and parent.upper() != "INBOX":
                try:
                    account.create_folder(parent)
                except MailError as e:
                    if e.kind is not ErrorKind.ALREADY_EXISTS:
                        raise
    account.create_folder(name)


def delete(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.4."""
    expect_count(req.args, 1)
    name = mailbox_name(req.args[0])
    if name == "INBOX":
        return no("INBOX cannot be deleted", "CANNOT")
    return s.run(s.account.delete_folder, name).addCallback(lambda _: ok("DELETE completed"))


def rename(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.5 (renaming INBOX is left to the storage layer)."""
    expect_count(req.args, 2)
    old, new = mailbox_name(req.args[0]), mailbox_name(req.args[1])
    if new == "INBOX":
        return no("INBOX already exists", "ALREADYEXISTS")
    d = s.run(s.account.rename_folder, old, new)
    return d.addCallback(lambda _: ok("RENAME completed"))


def subscribe(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.6."""
    expect_count(req.args, 1)
    name = mailbox_name(req.args[0])
    return s.run(s.account.subscribe, name, True).addCallback(lambda _: ok("SUBSCRIBE completed"))


def unsubscribe(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.7."""
    expect_count(req.args, 1)
    name = mailbox_name(req.args[0])
    d = s.run(s.account.subscribe, name, False)
    return d.addCallback(lambda _: ok("UNSUBSCRIBE completed"))


def status(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.10 with SIZE (RFC 8438) and APPENDLIMIT (RFC 7889);
    the items live in :mod:`mailsuite.imap.status`.  An unknown item is a
    BAD (never a silent hang)."""
    expect_count(req.args, 2)
    name = mailbox_name(req.args[0])
    wanted = status_items.parse_items(req.args[1])
    if "HIGHESTMODSEQ" in wanted:
        condstore.enable_condstore(s)  # RFC 7162 §3.1
    tracker = s.context.extras.setdefault("imap.recent", RecentTracker())
    limit = int(s.config.max_literal_size)
    d = s.run(status_items.compute, s.account, name, tracker, limit)

    def answer(values: dict[str, int]) -> Result:
        s.untagged(status_items.render(name, wanted, values))
        return ok("STATUS completed")

    return d.addCallback(answer)


def namespace(s: IMAPSession, req: Request) -> Result:
    """RFC 2342: one personal namespace, no others."""
    expect_count(req.args, 0)
    s.untagged('NAMESPACE (("" "/")) NIL NIL')
    return ok("NAMESPACE completed")


COMMANDS = (
    Command("SELECT", select, AUTHENTICATED),
    Command("EXAMINE", examine, AUTHENTICATED),
    Command("CREATE", create, AUTHENTICATED),
    Command("DELETE", delete, AUTHENTICATED),
    Command("RENAME", rename, AUTHENTICATED),
    Command("SUBSCRIBE", subscribe, AUTHENTICATED),
    Command("UNSUBSCRIBE", unsubscribe, AUTHENTICATED),
    Command("STATUS", status, AUTHENTICATED),
    Command("NAMESPACE", namespace, AUTHENTICATED),
    *listing.COMMANDS,
    *append.COMMANDS,
)
