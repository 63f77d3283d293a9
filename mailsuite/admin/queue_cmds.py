"""``mailsuite-admin queue list|show|flush|retry|delete``.

Works on ``<data>/queue`` directly, also while the server runs: changes are
made under the entry's lock (:mod:`mailsuite.delivery.queue_store`), and the
server's runner picks them up at its next scan (``queue.scan_interval``).
An entry that the server is delivering at that moment is reported as busy
(exit 75, EX_TEMPFAIL) and left alone.

* ``list`` — one line per entry: id, age, size, next attempt, pending/total
  recipients, sender; then each pending recipient with its last error.
* ``show ID`` — the whole state, and ``--message`` prints the message.
* ``flush`` — every entry due now; ``retry ID...`` — the given ones.
* ``delete ID...`` / ``delete --all`` — remove without a bounce.
"""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any

from mailsuite.admin import exits, tables
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.delivery.queue_store import PENDING, QueueEntry, QueueStore
from mailsuite.errors import ErrorKind, MailError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("queue", help="inspect and manage the outbound queue")
    sub = p.add_subparsers(dest="queue_command", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("list", help="list queued messages")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(handler=cmd_list)
    s = sub.add_parser("show", help="show one queued message")
    s.add_argument("id")
    s.add_argument("--message", action="store_true", help="print the message too")
    s.set_defaults(handler=cmd_show)
    s = sub.add_parser("flush", help="make every queued message due now")
    s.set_defaults(handler=cmd_flush)
    s = sub.add_parser("retry", help="make the given messages due now")
    s.add_argument("ids", nargs="+", metavar="ID")
    s.set_defaults(handler=cmd_retry)
    s = sub.add_parser("delete", help="remove messages from the queue (no bounce)")
    s.add_argument("ids", nargs="*", metavar="ID")
    s.add_argument("--all", action="store_true", help="remove every queued message")
    s.set_defaults(handler=cmd_delete)


def _store(env: AdminEnv) -> QueueStore | None:
    path = env.config.data_dir / "queue"
    if not (path / "env").is_dir():
        return None
    store: QueueStore = env.resource("queue_store", lambda: QueueStore(path))
    return store


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _size(n: int) -> str:
    for unit in ("", "K", "M"):
        if n < 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}G"


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _load(store: QueueStore, queue_id: str) -> QueueEntry:
    try:
        return store.load(queue_id)
    except MailError as e:
        if e.kind is ErrorKind.NONEXISTENT:
            raise AdminError(f"{queue_id}: no such queue entry", exits.NOINPUT)
        raise AdminError(f"{queue_id}: {e.public_text}", exits.SOFTWARE)


def cmd_list(args: argparse.Namespace, env: AdminEnv) -> int:
    store = _store(env)
    ids = store.ids() if store else []
    now = time.time()
    entries = []
    for queue_id in ids:
        try:
            entries.append(store.load(queue_id))  # type: ignore[union-attr]
        except MailError:
            continue  # removed meanwhile (or damaged: shown by ``show``)
    if args.json:
        tables.as_json(env, [_entry_json(e) for e in entries])
        return exits.OK
    if entries:
        env.out(f"{'ID':<19}  {'AGE':>7}  {'SIZE':>5}  {'NEXT':>7}  {'RCPTS':>5}  FROM")
    for e in entries:
        pending = e.pending()
        nxt = "now" if e.next_attempt <= now else _age(e.next_attempt - now)
        rcpts = f"{len(pending)}/{len(e.recipients)}"
        line = f"{e.id:<19}  {_age(now - e.created):>7}  {_size(e.size):>5}  {nxt:>7}"
        env.out(f"{line}  {rcpts:>5}  <{e.mail_from}>")
        for r in pending:
            env.out(f"    {r.address}" + (f": {r.diagnostic}" if r.diagnostic else ""))
    env.out(f"{len(entries)} queued message(s)")
    return exits.OK


def _entry_json(e: QueueEntry) -> dict[str, Any]:
    """One queue entry for ``queue list --json``."""
    return {
        "id": e.id,
        "from": e.mail_from,
        "size": e.size,
        "created": int(e.created),
        "next_attempt": int(e.next_attempt),
        "pending": [{"address": r.address, "diagnostic": r.diagnostic or ""} for r in e.pending()],
        "recipients": len(e.recipients),
    }


def cmd_show(args: argparse.Namespace, env: AdminEnv) -> int:
    store = _store(env)
    if store is None:
        raise AdminError(f"{args.id}: no such queue entry", exits.NOINPUT)
    e = _load(store, args.id)
    env.out(f"id: {e.id}")
    env.out(f"from: <{e.mail_from}>")
    env.out(f"arrived: {_when(e.created)}")
    env.out(f"size: {e.size}")
    env.out(f"attempts: {e.attempts}")
    if e.last_attempt:
        env.out(f"last attempt: {_when(e.last_attempt)}")
    env.out(f"next attempt: {_when(e.next_attempt) if e.pending() else '-'}")
    if e.params:
        env.out("parameters: " + " ".join(f"{k}={v}" for k, v in sorted(e.params.items())))
    for r in e.recipients:
        state = r.status if r.status == PENDING else f"{r.status} ({r.action})"
        env.out(f"recipient <{r.address}>: {state}")
        if r.params:
            env.out("    parameters: " + " ".join(f"{k}={v}" for k, v in sorted(r.params.items())))
        if r.status_code or r.diagnostic:
            env.out(f"    last result: {r.status_code} {r.diagnostic}".rstrip())
        if r.remote_mta:
            env.out(f"    remote MTA: {r.remote_mta}")
    if args.message:
        env.out("")
        with store.open_message(e.id) as f:
            env.out(f.read().decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n"))
    return exits.OK


def _make_due(store: QueueStore, queue_id: str) -> bool:
    """Set the entry's next attempt to now; False if it is being delivered."""
    try:
        with store.locked(queue_id) as entry:
            entry.next_attempt = 0.0
            store.save(entry)
    except MailError as e:
        if e.kind is ErrorKind.IN_USE:
            return False
        raise
    return True


def _each(env: AdminEnv, store: QueueStore, ids: list[str], action: Any, verb: str) -> int:
    code = exits.OK
    for queue_id in ids:
        try:
            done = action(store, queue_id)
        except MailError as e:
            if e.kind is ErrorKind.NONEXISTENT:
                env.out(f"{queue_id}: no such queue entry")
                code = max(code, exits.NOINPUT)
                continue
            raise AdminError(f"{queue_id}: {e.public_text}", exits.SOFTWARE)
        if done:
            env.out(f"{queue_id}: {verb}")
        else:
            env.out(f"{queue_id}: being delivered right now, try again")
            code = exits.TEMPFAIL
    return code


def cmd_flush(args: argparse.Namespace, env: AdminEnv) -> int:
    store = _store(env)
    ids = store.ids() if store else []
    code = _each(env, store, ids, _make_due, "due now") if store else exits.OK
    env.out(f"{len(ids)} queued message(s) flushed; the server picks them up at its next scan")
    return code


def cmd_retry(args: argparse.Namespace, env: AdminEnv) -> int:
    store = _store(env)
    if store is None:
        raise AdminError("the queue is empty", exits.NOINPUT)
    return _each(env, store, args.ids, _make_due, "due now")


def _delete(store: QueueStore, queue_id: str) -> bool:
    lock = store.lock(queue_id)
    if lock is None:
        return False
    try:
        store.remove(queue_id)
    finally:
        lock.release()
    return True


def cmd_delete(args: argparse.Namespace, env: AdminEnv) -> int:
    if bool(args.ids) == bool(args.all):
        raise AdminError("give queue ids or --all", exits.USAGE)
    store = _store(env)
    if store is None:
        if args.all:
            return exits.OK
        raise AdminError("the queue is empty", exits.NOINPUT)
    ids = store.ids() if args.all else args.ids
    return _each(env, store, ids, _delete, "deleted")
