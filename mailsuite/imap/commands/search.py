"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8).

Keys are parsed and matched by :mod:`mailsuite.imap.searchmatch`
(``[CHARSET UTF-8|US-ASCII] keys...``; another charset answers
``NO [BADCHARSET (UTF-8 US-ASCII)]``).  Messages are matched in batches in
a pool thread, so a large mailbox never blocks the reactor (a search on
flags, sizes and dates only of at most ``_INLINE_MAX`` messages reads just
the view's memory and runs on the reactor); header keys use the process's
header cache, other content keys read the file lazily and use the structure
cached in the index.  The result
is one ``* SEARCH`` line (UIDs for UID SEARCH), or with ``RETURN (...)``
one ``* ESEARCH`` line (RFC 4731, :mod:`mailsuite.imap.esearch`).  Messages another session
expunged, not yet reported to this client, never match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore, esearch, responses
from mailsuite.imap.command import Request, Result, no, ok
from mailsuite.imap.parser import ParseError
from mailsuite.imap.searchmatch import (
    MessageContext,
    Node,
    SearchParseError,
    SeqSet,
    any_leaf,
    matches,
    needs_content,
    needs_info,
    parse_search_program,
)

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_CONTENT_BATCH = 200
_META_BATCH = 5000
_INLINE_MAX = 1000  # metadata-only searches of at most this many messages run on the reactor


def search(s: IMAPSession, req: Request) -> Any:
    view = s.view
    assert view is not None
    options, keys = esearch.split_return(req.args)
    try:
        _charset, tree = parse_search_program(keys, now=s.context.reactor.seconds())
    except SearchParseError as e:
        if e.code == "BADCHARSET":
            return no("Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")
        raise ParseError(e.text or "Invalid search keys")
    if req.uid and _uses_sequence_numbers(tree):
        s.hold_expunge = True  # RFC 7162 §3.2.10.2, RFC 9051 §7.5.1
    with_modseq = condstore.uses_modseq(tree)
    if with_modseq:
        condstore.enable_condstore(s)  # RFC 7162 §3.1
    max_uid = view.uids[-1] if view.uids else 0
    # (seq, uid) only: flags and MessageInfo are looked up per batch in the
    # pool thread (the view is not changed while a command runs)
    if view.pending_expunge:
        candidates = [(seq, uid) for seq, uid in enumerate(view.uids, 1) if view.live(uid)]
    else:
        candidates = list(enumerate(view.uids, 1))
    content = needs_content(tree)
    batch = _CONTENT_BATCH if content else _META_BATCH
    maxima = (view.exists, max_uid)
    d: defer.Deferred[list[tuple[int, int]]]
    found = None
    if len(candidates) <= _INLINE_MAX:
        # flags, sizes, dates, or texts the header cache holds: the reactor
        # reads memory only, cheaper than a pool round trip
        found = _match_in_memory(view, candidates, tree, maxima, content)
    if found is not None:
        d = defer.succeed(found)
    elif len(candidates) <= batch:
        d = s.run(_match_batch, view.mailbox, candidates, tree, maxima, view)
    else:
        d = defer.ensureDeferred(_run(s, view.mailbox, candidates, tree, maxima, batch))

    def answer(found: list[tuple[int, int]]) -> Result:
        values = [uid if req.uid else seq for seq, uid in found]
        highest = ""  # RFC 7162 §3.1.6, §3.1.10: the highest modseq found
        if with_modseq and found:
            highest = str(max(view.info[uid].modseq for _, uid in found))
        if options is not None:
            line = esearch.render(req.tag, req.uid, values, options)
            s.untagged(line + (f" MODSEQ {highest}" if highest else ""))
            return ok("SEARCH completed")
        tail = f" (MODSEQ {highest})" if highest else ""
        s.untagged("".join(["SEARCH", *[f" {v}" for v in values], tail]))
        return ok("SEARCH completed")

    return d.addCallback(answer)


def _uses_sequence_numbers(node: Node) -> bool:
    """True if a search tree has a message-number set (not a UID set)."""
    return any_leaf(node, lambda k: isinstance(k, SeqSet) and not k.uid)


async def _run(
    s: IMAPSession,
    mailbox: Any,
    candidates: list[Any],
    tree: Node,
    maxima: tuple[int, int],
    size: int,
) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    view = s.view
    for i in range(0, len(candidates), size):
        if s.disconnecting or s.view is not view:
            break  # the connection went away
        part = candidates[i : i + size]
        found.extend(await s.run(_match_batch, mailbox, part, tree, maxima, view))
    return found


class _NeedsFile(Exception):
    """A key needs the message file: not on the reactor thread."""


def _needs_file() -> Any:
    raise _NeedsFile


def _match_in_memory(
    view: Any, candidates: list[Any], tree: Node, maxima: tuple[int, int], content: bool
) -> list[tuple[int, int]] | None:
    """Reactor thread: the matches when no file must be read -- metadata
    keys, or content keys answered by the header cache (its entries and the
    texts kept in their memo) -- else None (the pool takes over)."""
    if not content:
        return _match_batch(None, candidates, tree, maxima, view)
    cached = getattr(view.mailbox, "cached_header_entries", None)
    heads = cached([uid for _, uid in candidates]) if cached is not None else None
    if heads is None:
        return None
    try:
        return _match_batch(None, candidates, tree, maxima, view, heads)
    except _NeedsFile:
        return None


def _match_batch(
    mailbox: Any,
    batch: list[Any],
    tree: Node,
    maxima: tuple[int, int],
    view: Any,
    heads: dict[int, Any] | None = None,
) -> list[tuple[int, int]]:
    """Pool thread (or the reactor, with ``mailbox`` None, for a small
    metadata-only search or one whose header cache entries ``heads`` are
    given: raises _NeedsFile then if a file must be read): (seq, uid) of the
    batch's matching messages (the session's view is read here: no command
    or refresh changes it meanwhile)."""
    out = []
    max_seq, max_uid = maxima
    # the process's header cache: header keys read the header there, and
    # every content key keeps what it derives in the entry's memo
    if not needs_content(tree):
        return _match_meta(batch, tree, maxima, view)
    if heads is None:
        heads = mailbox.header_entries([uid for _, uid in batch])
    for seq, uid, flags, lower, size, when, modseq in _facts(batch, tree, view):
        ctx = MessageContext(
            uid=uid,
            seq=seq,
            flags=flags,
            size=size,
            internaldate=when,
            max_seq=max_seq,
            max_uid=max_uid,
            modseq=modseq,
            _flags=lower,
            load_raw=_loader(mailbox, uid) if mailbox is not None else _needs_file,
            load_part=_part_loader(mailbox, uid) if mailbox is not None else _needs_file,
            load_header=_header_loader(mailbox, uid, None) if mailbox is not None else None,
            head=heads.get(uid),
        )
        try:
            if matches(tree, ctx):
                out.append((seq, uid))
        except MailError as e:
            if e.kind not in (ErrorKind.EXPUNGED, ErrorKind.NONEXISTENT):
                raise
    return out


def _facts(batch: list[Any], tree: Node, view: Any) -> Any:
    """Per (seq, uid) of ``batch``: (seq, uid, flags, case-folded flags,
    size, internal date, modseq).  Flag sets are read in one call and folded
    once per distinct set; size, date and modseq are read only when a key
    of ``tree`` uses them (else 0, the epoch, 0)."""
    with_info = needs_info(tree)
    size, when, modseq = 0, responses.EPOCH, 0
    folded: dict[frozenset[str], frozenset[str]] = {}
    many = getattr(view, "flags_many", None)
    uids = [uid for _, uid in batch]
    flag_sets = many(uids) if many is not None else [view.flags(uid) for uid in uids]
    for (seq, uid), flags in zip(batch, flag_sets, strict=True):
        if with_info:
            info = view.info[uid]
            size, when, modseq = info.size, info.internaldate, info.modseq
        lower = folded.get(flags)
        if lower is None:
            lower = folded[flags] = frozenset(f.casefold() for f in flags)
        yield seq, uid, flags, lower, size, when, modseq


def _match_meta(
    batch: list[Any], tree: Node, maxima: tuple[int, int], view: Any
) -> list[tuple[int, int]]:
    """:func:`_match_batch` for keys that read no content: one context
    object, updated per message (no key reads the file or caches in it)."""
    ctx = MessageContext(
        uid=0,
        seq=0,
        flags=frozenset(),
        size=0,
        internaldate=responses.EPOCH,
        max_seq=maxima[0],
        max_uid=maxima[1],
    )
    out = []
    for seq, uid, flags, lower, size, when, modseq in _facts(batch, tree, view):
        ctx.uid, ctx.seq, ctx.flags, ctx._flags = uid, seq, flags, lower
        ctx.size, ctx.internaldate, ctx.modseq = size, when, modseq
        if matches(tree, ctx):
            out.append((seq, uid))
    return out


def _part_loader(mailbox: Any, uid: int) -> Any:
    def load() -> Any:
        return mailbox.structure(uid)

    return load


def _header_loader(mailbox: Any, uid: int, end: int | None) -> Any:
    def load() -> bytes:
        head: bytes = mailbox.header_bytes(uid, end)
        return head

    return load


def _loader(mailbox: Any, uid: int) -> Any:
    def load() -> bytes:
        with mailbox.open_message(uid) as f:
            data: bytes = f.read()
        return data

    return load
