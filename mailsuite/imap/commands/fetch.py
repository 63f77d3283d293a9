"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; RFC 3516 BINARY).

Messages are rendered in batches in a pool thread (reading files, parsing
structure, setting ``\\Seen``) and each batch is written with one transport
write; the reactor gets a turn between batches and, when the client reads
slowly, the loop waits for the transport's write buffer to drain
(:class:`WriteGate`).  A non-PEEK body fetch on a read-write mailbox sets
``\\Seen`` and the new FLAGS are included in the response.  EXAMINE never
changes flags.  Messages another session expunged are skipped and the
command answers ``NO [EXPUNGEISSUED]`` (RFC 2180 §4.1.2, RFC 5530).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from mailsuite.errors import ErrorKind, MailError
from mailsuite.imap import condstore, content, responses
from mailsuite.imap.command import Request, Result, no, ok
from mailsuite.imap.commands import condstore as condstore_cmds
from mailsuite.imap.fetchatts import FetchAtt, parse_fetch_atts
from mailsuite.imap.parser import ParseError, parse_sequence_set
from mailsuite.imap.selected import RECENT
from mailsuite.protocol.flow import WriteGate

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

_META_BATCH = 1000  # messages per batch when no file is read
_CONTENT_BATCH = 100  # messages per batch when files are read
_BATCH_BYTES = 2 * 1024 * 1024  # stored bytes per batch
_SMALL_BYTES = 256 * 1024  # at most this much in one batch: no write gate


def fetch(s: IMAPSession, req: Request) -> Any:
    """``FETCH sequence-set atts [(CHANGEDSINCE n [VANISHED])]`` (RFC 7162 §3.1.4, §3.2.6)."""
    view = s.view
    assert view is not None
    if len(req.args) not in (2, 3):
        raise ParseError("FETCH needs a sequence set and attributes")
    seqset = parse_sequence_set(req.args[0])
    atts = parse_fetch_atts(req.args[1:2])
    mods = None
    if len(req.args) == 3:
        mods = condstore.parse_fetch_modifiers(s, req.args[2], req.uid)
        if not any(a.name == "MODSEQ" for a in atts):
            atts = [FetchAtt("MODSEQ"), *atts]
    if req.uid and not any(a.name == "UID" for a in atts):
        atts = [FetchAtt("UID"), *atts]
    indices = view.select(seqset, req.uid)
    if any(a.name == "MODSEQ" for a in atts):
        condstore.enable_condstore(s)  # RFC 7162 §3.1
    uids = view.uids
    if not view.pending_expunge:  # every message of the sequence is live
        targets = [(i + 1, uids[i]) for i in indices]
        skipped = False
    else:
        targets = []
        skipped = False
        for i in indices:
            uid = uids[i]
            if view.live(uid):
                targets.append((i + 1, uid))
            else:
                skipped = True
    set_seen = not view.readonly and any(a.sets_seen for a in atts)
    d: defer.Deferred[tuple[bool, str | None]]
    if mods is not None and mods.changedsince is not None:
        found = condstore_cmds.changed_fetch(s, view, mods, seqset, targets)
        d = found.addCallback(lambda changed: send_fetch(s, atts, changed, set_seen))
    else:
        d = send_fetch(s, atts, targets, set_seen)

    def done(outcome: tuple[bool, str | None]) -> Result:
        missing, failed_code = outcome
        if failed_code:
            return no("Some parts could not be decoded", failed_code)
        if missing or (skipped and not req.uid):  # UID FETCH: EXPUNGE/VANISHED follow
            return no("Some messages were expunged", "EXPUNGEISSUED")
        return ok("FETCH completed")

    return d.addCallback(done)


def send_fetch(
    s: IMAPSession, atts: list[FetchAtt], targets: list[tuple[int, int]], set_seen: bool
) -> defer.Deferred[tuple[bool, str | None]]:
    """Send FETCH responses for ``targets`` ((seq, uid) pairs); fires with
    (some message was gone, response code of an undecodable BINARY item).

    An answer of one batch of little data (the common ``FETCH n BODY[]``,
    ``FETCH 1:* (FLAGS)`` of a small folder) skips the batch loop and its
    write gate: one write, nothing to wait for between batches.
    """
    view = s.view
    assert view is not None
    heavy = any(a.needs_content for a in atts)
    if not heavy and not set_seen:
        if len(targets) <= _META_BATCH:
            if targets:
                s.send(_meta_renderer(view, atts)(targets))
            return defer.succeed((False, None))
    elif len(targets) <= _CONTENT_BATCH:
        if content.header_only(atts):  # a small answer whatever the message sizes
            if not set_seen:
                heads = _cached_heads(view.mailbox, targets)
                if heads is not None:
                    return _run_cached(s, atts, targets, heads=heads)
            return _run_one(s, atts, targets, set_seen)
        size = view.info.size
        if sum(size(uid) for _, uid in targets) <= _SMALL_BYTES:
            if not set_seen and _whole_only(atts):
                bodies = _cached_bodies(view.mailbox, targets)
                if bodies is not None:
                    return _run_cached(s, atts, targets, bodies=bodies)
            return _run_one(s, atts, targets, set_seen)
    return defer.ensureDeferred(_run(s, atts, targets, set_seen))


def _whole_only(atts: list[FetchAtt]) -> bool:
    """True if the content items are all whole messages (``BODY.PEEK[]``,
    partial or not): no structure, no header parsing."""
    return content.needs_raw(atts) and not content.needs_structure(atts)


def _cached_bodies(mailbox: Any, targets: list[tuple[int, int]]) -> dict[int, bytes] | None:
    """The stored bytes of every target from the process's body cache, or
    None if one is not there (then the pool reads the files)."""
    cached = getattr(mailbox, "cached_message", None)
    if cached is None:
        return None
    bodies = {}
    for _, uid in targets:
        data = cached(uid)
        if data is None:
            return None
        bodies[uid] = data
    return bodies


def _cached_heads(mailbox: Any, targets: list[tuple[int, int]]) -> dict[int, Any] | None:
    """The header cache entries of every target, or None if one is missing."""
    cached = getattr(mailbox, "cached_header_entries", None)
    if cached is None:
        return None
    heads: dict[int, Any] | None = cached([uid for _, uid in targets])
    return heads


def _run_cached(
    s: IMAPSession,
    atts: list[FetchAtt],
    targets: list[tuple[int, int]],
    bodies: dict[int, bytes] | None = None,
    heads: dict[int, Any] | None = None,
) -> defer.Deferred[tuple[bool, str | None]]:
    """Reactor thread: what every message needs is in memory (``bodies``, or
    header cache entries ``heads``; no file is read, no flag set), so there
    is no pool round trip."""
    view = s.view
    assert view is not None
    items = [(seq, uid, view.flags(uid), view.info[uid]) for seq, uid in targets]
    data, _changed, gone, code = _render_batch(
        view.mailbox, items, atts, False, view.condstore, bodies, heads
    )
    if data:
        s.send(data)
    return defer.succeed((bool(gone), code))


def _run_one(
    s: IMAPSession, atts: list[FetchAtt], targets: list[tuple[int, int]], set_seen: bool
) -> defer.Deferred[tuple[bool, str | None]]:
    """One pool call renders every message; one write sends them."""
    view = s.view
    assert view is not None
    items = [(seq, uid, view.flags(uid), view.info[uid]) for seq, uid in targets]
    d = s.run(_render_batch, view.mailbox, items, atts, set_seen, view.condstore)

    def sent(result: Any) -> tuple[bool, str | None]:
        data, changed, gone, code = result
        if s.disconnecting or s.view is not view:
            return False, None  # the connection went away
        if changed:
            view.note_stored(changed)
        if data:
            s.send(data)
        return bool(gone), code

    return d.addCallback(sent)


async def _run(
    s: IMAPSession, atts: list[FetchAtt], targets: list[tuple[int, int]], set_seen: bool
) -> tuple[bool, str | None]:
    view = s.view
    assert view is not None
    heavy = any(a.needs_content for a in atts)
    if not heavy and not set_seen:
        return await _run_meta(s, atts, targets)
    gate = _register_gate(s)
    missing = False
    failed: str | None = None
    try:
        for batch in _batches(view, targets, heavy):
            if s.disconnecting or s.view is not view:
                return missing, failed  # the connection went away
            items = [(seq, uid, view.flags(uid), view.info[uid]) for seq, uid in batch]
            data, changed, gone, code = await s.run(
                _render_batch, view.mailbox, items, atts, set_seen, view.condstore
            )
            if s.disconnecting or s.view is not view:
                return missing, failed
            missing = missing or bool(gone)
            failed = failed or code
            if changed:
                view.note_stored(changed)
            if data:
                s.send(data)
            if gate is not None:
                await gate.wait()
    finally:
        if gate is not None and s.transport is not None:
            s.transport.unregisterProducer()
    return missing, failed


async def _run_meta(
    s: IMAPSession, atts: list[FetchAtt], targets: list[tuple[int, int]]
) -> tuple[bool, str | None]:
    """FLAGS, UID, RFC822.SIZE, INTERNALDATE and MODSEQ need no file: they are
    rendered from the view on the reactor thread (no pool round trip), one
    write per ``_META_BATCH`` messages and a reactor turn between batches."""
    view = s.view
    assert view is not None
    render = _meta_renderer(view, atts)
    gate = _register_gate(s)
    try:
        for i in range(0, len(targets), _META_BATCH):
            if i:
                await task.deferLater(s.factory.clock, 0, lambda: None)
                if gate is not None:
                    await gate.wait()
                if s.disconnecting or s.view is not view:
                    break  # the connection went away
            s.send(render(targets[i : i + _META_BATCH]))
    finally:
        if gate is not None and s.transport is not None:
            s.transport.unregisterProducer()
    return False, None


def _meta_renderer(view: Any, atts: list[FetchAtt]) -> Callable[[list[tuple[int, int]]], bytes]:
    """A function rendering the metadata-only ``* n FETCH (...)`` lines of a
    batch (the same bytes as :func:`_render_batch`); each distinct flag set
    is rendered once."""
    info, recent = view.info, view.recent
    rendered: dict[frozenset[str], bytes] = {}
    rendered_recent: dict[frozenset[str], bytes] = {}

    def flag_text(f: frozenset[str]) -> bytes:
        text = rendered.get(f)
        if text is None:
            text = rendered[f] = b"FLAGS " + responses.flag_list(f).encode()
        return text

    def recent_text(f: frozenset[str]) -> bytes:
        text = rendered_recent.get(f)
        if text is None:
            text = rendered_recent[f] = flag_text(f | {RECENT})
        return text

    def when(uid: int) -> bytes:
        return b"INTERNALDATE " + responses.internaldate(info[uid].internaldate).encode()

    items: dict[str, Callable[[int], bytes]] = {
        "UID": lambda uid: b"UID %d" % uid,
        "RFC822.SIZE": lambda uid: b"RFC822.SIZE %d" % info.size(uid),
        "INTERNALDATE": when,
        "MODSEQ": lambda uid: b"MODSEQ (%d)" % info[uid].modseq,
    }
    names = [a.name for a in atts]

    def render(batch: list[tuple[int, int]]) -> bytes:
        flags: list[bytes] = []
        if "FLAGS" in names:
            sets = info.flags_many([uid for _, uid in batch])
            if recent:
                flags = [
                    recent_text(f) if uid in recent else flag_text(f)
                    for (_, uid), f in zip(batch, sets, strict=True)
                ]
            else:
                flags = [flag_text(f) for f in sets]
            if names == ["FLAGS"]:  # the common shapes without a loop per item
                pairs = zip(batch, flags, strict=True)
                return b"".join([b"* %d FETCH (%s)\r\n" % (seq, f) for (seq, _), f in pairs])
            if names == ["UID", "FLAGS"]:
                pairs = zip(batch, flags, strict=True)
                return b"".join(
                    [b"* %d FETCH (UID %d %s)\r\n" % (seq, uid, f) for (seq, uid), f in pairs]
                )
        out = []
        for k, (seq, uid) in enumerate(batch):
            pieces = [flags[k] if n == "FLAGS" else items[n](uid) for n in names]
            out.append(b"* %d FETCH (" % seq + b" ".join(pieces) + b")\r\n")
        return b"".join(out)

    return render


def _register_gate(s: IMAPSession) -> WriteGate | None:
    transport = s.transport
    if transport is None or getattr(transport, "producer", None) is not None:
        return None
    gate = WriteGate()
    try:
        transport.registerProducer(gate, True)
    except Exception:
        return None
    return gate


def _batches(view: Any, targets: list[tuple[int, int]], heavy: bool) -> Generator[list[Any]]:
    if not heavy:
        for i in range(0, len(targets), _META_BATCH):
            yield targets[i : i + _META_BATCH]
        return
    batch: list[tuple[int, int]] = []
    size = 0
    size_of = view.info.size
    for seq, uid in targets:
        batch.append((seq, uid))
        size += size_of(uid)
        if len(batch) >= _CONTENT_BATCH or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _render_batch(
    mailbox: Any,
    items: list[Any],
    atts: list[FetchAtt],
    set_seen: bool,
    with_modseq: bool = False,
    bodies: dict[int, bytes] | None = None,
    heads: dict[int, Any] | None = None,
) -> tuple[bytes, dict[int, tuple[frozenset[str], int]], list[int], str | None]:
    """Pool thread: the FETCH responses of one batch, (flags, modseq) set,
    UIDs gone, and the response code of a BINARY item that could not be
    decoded.  With ``with_modseq`` a message whose \\Seen this FETCH set also
    gets UID and MODSEQ (RFC 7162 §3.2.4).  ``bodies`` (the stored bytes of
    every message, from memory) or ``heads`` (their header cache entries,
    for header-only items) let the reactor thread call it: no file is read
    then (``set_seen`` must be False and no structure needed)."""
    changed: dict[int, tuple[frozenset[str], int]] = {}
    if set_seen:
        need = [uid for _, uid, flags, _ in items if "\\Seen" not in flags]
        if need:
            changed = dict(mailbox.store_flags_conditional(need, ["\\Seen"], "add").messages)
    head_only = content.header_only(atts)  # read the header bytes, no structure
    want_raw = content.needs_raw(atts) and not head_only
    want_structure = content.needs_structure(atts) and not head_only
    has = {a.name for a in atts}
    if heads is None:
        heads = mailbox.header_entries([it[1] for it in items]) if head_only else {}
    # header items depend on the header bytes only: kept in the header cache's memo
    memo_keys = [f"r:{a.response_name()}{a.partial}" if a.needs_content else "" for a in atts]
    out: list[bytes] = []
    gone: list[int] = []
    failed: str | None = None
    for seq, uid, flags, info in items:
        modseq = info.modseq
        if uid in changed:
            flags = changed[uid][0] | (flags & {RECENT})
            modseq = changed[uid][1]
        entry = None
        try:
            part: Any
            if head_only:
                entry = heads.get(uid)
                if entry is None:
                    raise MailError(ErrorKind.EXPUNGED)
                raw = entry.raw
                part = None
            else:
                if bodies is not None:
                    raw = bodies[uid]
                else:
                    raw = _read(mailbox, uid) if want_raw else None
                part = mailbox.structure(uid) if want_structure else None
        except MailError as e:
            if e.kind in (ErrorKind.EXPUNGED, ErrorKind.NONEXISTENT):
                gone.append(uid)
                continue
            raise
        pieces = []
        if uid in changed and with_modseq and "UID" not in has:
            pieces.append(b"UID %d" % uid)
        for a, memo_key in zip(atts, memo_keys, strict=True):
            if a.name == "MODSEQ":
                pieces.append(b"MODSEQ (%d)" % modseq)
                continue
            if entry is not None and memo_key:
                text = entry.memo.get(memo_key)
                if text is None:
                    text = entry.remember(memo_key, _render_header(a, raw))
                pieces.append(text)
                continue
            try:
                pieces.append(
                    content.render_item(
                        a,
                        uid=uid,
                        flags=flags,
                        size=info.size,
                        internaldate=info.internaldate,
                        raw=raw,
                        part=part,
                    )
                )
            except content.BinaryError as e:  # the item is left out (as Dovecot does)
                failed = e.code
        if uid in changed and with_modseq and "MODSEQ" not in has:
            pieces.append(b"MODSEQ (%d)" % modseq)
        if uid in changed and "FLAGS" not in has:
            pieces.append(
                content.render_item(
                    FetchAtt("FLAGS"),
                    uid=uid,
                    flags=flags,
                    size=0,
                    internaldate=info.internaldate,
                    raw=None,
                    part=None,
                )
            )
        if pieces:
            out.append(b"* %d FETCH (" % seq + b" ".join(pieces) + b")\r\n")
    return b"".join(out), changed, gone, failed


def _render_header(att: FetchAtt, head: bytes) -> bytes:
    """A header item (:func:`content.header_only`) of a message whose top-level header is ``head``."""
    return content.render_item(
        att,
        uid=0,
        flags=frozenset(),
        size=0,
        internaldate=responses.EPOCH,
        raw=head,
        part=content.header_part(head),
    )


def _read(mailbox: Any, uid: int) -> bytes:
    whole = getattr(mailbox, "message_bytes", None)
    if whole is not None:  # small messages are kept in memory for the next FETCH
        data: bytes = whole(uid)
        return data
    with mailbox.open_message(uid) as f:
        read: bytes = f.read()
    return read
