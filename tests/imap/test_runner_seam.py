"""Every storage call of the session goes through context.runner
(DESIGN.md §2: blocking disk I/O never on the reactor thread).

The real store is wrapped in a proxy that fails when a method is called
outside ``runner.run``; a transcript exercising every command family runs
over it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from twisted.internet import defer

from tests.imap.support import Client, add_user, deliver, make_context, message

_PLAIN = {"name", "uidvalidity", "address", "root", "hub"}
#: Allowed on the reactor thread by decision (server.refresh): a few stat()
#: calls, no listing, instead of a pool round trip per command; and the
#: body and header cache lookups of FETCH (memory only: a miss goes to the pool).
_REACTOR_OK = {"changed_on_disk", "cached_message", "cached_header_entries"}


class Seam:
    def __init__(self) -> None:
        self.depth = 0
        self.violations: list[str] = []

    def run(self, fn: Any, *args: Any, **kw: Any) -> defer.Deferred[Any]:
        self.depth += 1
        try:
            return defer.maybeDeferred(fn, *args, **kw)
        finally:
            self.depth -= 1


class Guard:
    """Proxies a storage object; calls must happen inside Seam.run."""

    def __init__(self, target: Any, seam: Seam, label: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_seam", seam)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in _PLAIN | _REACTOR_OK or name.startswith("_") or not callable(value):
            return value
        seam, label = self._seam, self._label

        def call(*args: Any, **kw: Any) -> Any:
            if seam.depth == 0 and not (label == "store" and name == "account"):
                seam.violations.append(f"{label}.{name}")
            args = tuple(a._target if isinstance(a, Guard) else a for a in args)
            result = value(*args, **kw)
            if name in ("account", "open"):
                return Guard(result, seam, name)
            return result

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)


def test_every_storage_call_goes_through_the_runner(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx)
    for i in range(3):
        deliver(ctx, message(i))
    seam = Seam()
    real_store = ctx.store
    ctx.runner = seam
    ctx.store = Guard(ctx.store, seam, "store")  # type: ignore[assignment]
    c = Client(ctx)
    c.login()
    for command in (
        'LIST "" "*"',
        'LSUB "" "*"',
        "CREATE Work/Sub",
        "RENAME Work/Sub Work/Other",
        "SUBSCRIBE Work",
        "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)",
        "SELECT INBOX",
        "FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE BODY[HEADER] BODY[TEXT])",
        "STORE 1 +FLAGS (\\Deleted)",
        "SEARCH TEXT message",
        "UID SEARCH UNSEEN",
        "COPY 2 Work",
        "UID MOVE 3 Trash",
        "EXPUNGE",
        "NOOP",
        "CHECK",
        "EXAMINE Work",
        "FETCH 1 BODY[]",
        "CLOSE",
        "DELETE Work/Other",
    ):
        c.ok(command)
    assert c.raw(b"a APPEND INBOX {%d+}\r\n" % len(message(9)) + message(9) + b"\r\n").startswith(
        b"a OK"
    )
    c.ok("SELECT INBOX")
    c.cmd("IDLE")
    box = real_store.account("alice@example.test").open("INBOX")  # another "process"
    box.append(io.BytesIO(message(10)))
    assert b"EXISTS" in c.read()
    c.raw(b"DONE\r\n")
    c.ok("LOGOUT")
    assert seam.violations == []
