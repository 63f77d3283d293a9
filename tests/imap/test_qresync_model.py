"""Property test of QRESYNC resynchronisation (RFC 7162 §3.2.5, §6): a client
caches UID -> flags and HIGHESTMODSEQ, goes away while another session and
another process change flags, expunge and deliver in random ways, then
reselects with ``QRESYNC (uidvalidity modseq known-uids)`` and applies only
the VANISHED (EARLIER) and FETCH responses.  Its cache must then equal the
mailbox for the UIDs it knew, and every HIGHESTMODSEQ a session is told must
never go down."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailsuite.storage.store import MaildirStore
from tests.imap.support import USER, Client, message
from tests.imap.test_condstore import setup

_FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Label1"]
_FETCH_RE = re.compile(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)")

_step = st.one_of(
    st.tuples(
        st.just("store"),
        st.sampled_from(["session", "process"]),
        st.integers(1, 12),
        st.sampled_from(["+", "-", ""]),
        st.sampled_from(_FLAGS),
    ),
    st.tuples(st.just("expunge"), st.sampled_from(["session", "process"]), st.integers(1, 12)),
    st.tuples(st.just("deliver")),
)


def _uids_flags(out: bytes) -> dict[int, set[str]]:
    found = {}
    for m in re.finditer(rb"UID (\d+) FLAGS \(([^)]*)\)", out):
        found[int(m.group(1))] = set(m.group(2).decode().split())
    return found


def _highests(out: bytes) -> list[int]:
    return [int(x) for x in re.findall(rb"\[HIGHESTMODSEQ (\d+)\]", out)]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(_step, min_size=1, max_size=12), st.booleans())
def test_qresync_resync_matches_mailbox(
    steps: list[tuple[object, ...]], idle_between: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp), steps, idle_between)


def _run(tmp: Path, steps: list[tuple[object, ...]], idle_between: bool) -> None:
    a, b = setup(tmp, 8, sessions=2)
    assert b"ENABLED QRESYNC" in a.ok("ENABLE QRESYNC")
    out = a.ok("SELECT INBOX")
    told = _highests(out)
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", out).group(1))  # type: ignore[union-attr]
    cache = _uids_flags(a.ok("UID FETCH 1:* (FLAGS)"))
    hms = told[-1]
    a.ok("UNSELECT")
    b.ok("SELECT INBOX")
    other = MaildirStore(tmp / "mail").account(USER).open("INBOX")
    for step in steps:
        other.sync()
        _apply(step, b, other)
        if idle_between:
            told += _highests(b.ok("NOOP"))
    # the client comes back and resynchronises from its cache alone
    known = ",".join(str(u) for u in sorted(cache))
    out = a.ok(f"SELECT INBOX (QRESYNC ({uv} {hms} {known}))")
    told += _highests(out)
    for m in re.finditer(rb"\* VANISHED \(EARLIER\) ([\d:,]+)", out):
        for part in m.group(1).decode().split(","):
            lo, _, hi = part.partition(":")
            for uid in range(int(lo), int(hi or lo) + 1):
                cache.pop(uid, None)
    for m in _FETCH_RE.finditer(out):
        uid = int(m.group(1))
        if uid in cache:
            cache[uid] = set(m.group(2).decode().split())
    truth = _uids_flags(a.ok("UID FETCH 1:* (FLAGS)"))
    assert cache == {u: f for u, f in truth.items() if u in cache}, (steps, out)
    assert set(truth) >= set(cache)
    assert told == sorted(told), told


def _apply(step: tuple[object, ...], b: Client, other: object) -> None:
    kind = step[0]
    if kind == "deliver":
        b.ctx.store.account(USER).open("INBOX").append(io.BytesIO(message(99)))
        return
    who = step[1]
    uid = int(step[2])  # type: ignore[call-overload]
    if kind == "store":
        sign, flag = str(step[3]), str(step[4])
        if who == "session":
            b.cmd(f"UID STORE {uid} {sign}FLAGS.SILENT ({flag})")
        else:
            mode = {"+": "add", "-": "remove", "": "set"}[sign]
            other.store_flags([uid], [flag], mode)  # type: ignore[attr-defined]
    elif who == "session":
        b.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        b.cmd(f"UID EXPUNGE {uid}")
    else:
        other.store_flags([uid], ["\\Deleted"], "add")  # type: ignore[attr-defined]
        other.expunge([uid])  # type: ignore[attr-defined]


_online = st.one_of(
    _step,
    st.tuples(
        st.just("client"), st.sampled_from(["NOOP", "UID FETCH 1:* (FLAGS)", "FETCH 1 (FLAGS)"])
    ),
    st.tuples(st.just("client-store"), st.integers(1, 12), st.sampled_from(_FLAGS)),
    st.tuples(st.just("client"), st.sampled_from(["STORE 1 +FLAGS ($Label2)", "SEARCH ALL"])),
)


class CachingClient:
    """A CONDSTORE/QRESYNC client's cache kept from the responses alone
    (RFC 7162 §6: HIGHESTMODSEQ from the response code if one came since
    the last tagged response, else the highest MODSEQ item seen)."""

    def __init__(self, uids: dict[int, set[str]], hms: int) -> None:
        self.flags = uids
        self.hms = hms

    def feed(self, out: bytes) -> None:
        code: int | None = None
        items: list[int] = []
        for line in out.split(b"\r\n"):
            if m := re.match(rb"\* VANISHED (?:\(EARLIER\) )?([\d:,]+)$", line):
                for uid in _expand(m.group(1)):
                    self.flags.pop(uid, None)
            elif m := re.match(rb"\* \d+ FETCH \((.*)\)$", line):
                body = m.group(1)
                uid_m = re.search(rb"UID (\d+)", body)
                flags_m = re.search(rb"FLAGS \(([^)]*)\)", body)
                mod_m = re.search(rb"MODSEQ \((\d+)\)", body)
                if mod_m:
                    items.append(int(mod_m.group(1)))
                if uid_m and flags_m and int(uid_m.group(1)) in self.flags:
                    flags = set(flags_m.group(1).decode().split()) - {"\\Recent"}
                    self.flags[int(uid_m.group(1))] = flags
            hm = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
            if hm:
                code = int(hm.group(1))
            if re.match(rb"t\d+ ", line):  # tagged: settle HIGHESTMODSEQ
                if code is not None:
                    self.hms = code
                elif items:
                    self.hms = max(self.hms, *items)
                code, items = None, []


def _expand(text: bytes) -> list[int]:
    out: list[int] = []
    for part in text.decode().split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(_online, min_size=1, max_size=16))
@example(  # an expunge held back while a later flag change is told with its MODSEQ
    [
        ("expunge", "session", 3),
        ("store", "process", 5, "+", "\\Flagged"),
        ("client", "FETCH 1 (FLAGS)"),
    ]
)
def test_connected_client_state_survives_disconnect(steps: list[tuple[object, ...]]) -> None:
    """A client that follows the changes while connected (with expunges held
    back during its FETCH/STORE) and loses the connection at the end can
    resynchronise from the HIGHESTMODSEQ it computed (§3.2, §6)."""
    with tempfile.TemporaryDirectory() as tmp:
        _run_online(Path(tmp), steps)


def _run_online(tmp: Path, steps: list[tuple[object, ...]]) -> None:
    a, b = setup(tmp, 8, sessions=2)
    a.ok("ENABLE QRESYNC")
    out = a.ok("SELECT INBOX")
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", out).group(1))  # type: ignore[union-attr]
    client = CachingClient({}, 0)
    client.feed(out)
    client.flags = {
        u: f - {"\\Recent"} for u, f in _uids_flags(a.ok("UID FETCH 1:* (FLAGS)")).items()
    }
    b.ok("SELECT INBOX")
    other = MaildirStore(tmp / "mail").account(USER).open("INBOX")
    for step in steps:
        other.sync()
        if step[0] == "client":
            client.feed(a.cmd(str(step[1])))
        elif step[0] == "client-store":
            client.feed(a.cmd(f"UID STORE {step[1]} +FLAGS ({step[2]})"))
        else:
            _apply(step, b, other)
    a.proto.transport.loseConnection()  # the connection drops
    c = Client(a.ctx)
    c.login()
    c.ok("ENABLE QRESYNC")
    known = ",".join(str(u) for u in sorted(client.flags)) or "1"
    client.feed(c.ok(f"SELECT INBOX (QRESYNC ({uv} {client.hms} {known}))"))
    truth = {u: f - {"\\Recent"} for u, f in _uids_flags(c.ok("UID FETCH 1:* (FLAGS)")).items()}
    assert client.flags == {u: f for u, f in truth.items() if u in client.flags}, steps
