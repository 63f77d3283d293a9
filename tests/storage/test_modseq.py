"""CONDSTORE/QRESYNC mod-sequences (RFC 7162) on real maildirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage import modseq as modseq_mod
from mailsuite.storage.account import MaildirAccount
from mailsuite.storage.index import INDEX_FILE
from mailsuite.storage.mailbox import MaildirMailbox
from mailsuite.storage.modseq import CEILING_FILE, MODSEQ_FILE, format_uids, parse_uids
from mailsuite.storage.store import MaildirStore
from tests.storage.conftest import msg
from tests.storage.test_sync import age_dirs

REPO = Path(__file__).resolve().parents[2]


def modseqs(box: MaildirMailbox) -> dict[int, int]:
    return {m.uid: m.modseq for m in box.messages()}


def fill(box: MaildirMailbox, n: int) -> list[int]:
    uids = [box.append(msg(i)) for i in range(n)]
    box.sync()
    return uids


def rename_in_cur(box: MaildirMailbox, uid: int, info: str) -> None:
    """What another process (Dovecot, mv) does to change flags."""
    cur = box.path / "cur"
    pos = list(box.uids()).index(uid)
    old = box.messages()._files[pos]
    os.rename(cur / old, cur / (old.partition(":")[0] + ":2," + info))


def file_records(box: MaildirMailbox) -> list[tuple[str, int, list[int]]]:
    data = (box.path / MODSEQ_FILE).read_bytes()
    header, _, _ = data.partition(b"\n")
    fields = header.decode().split()
    n, e, tlen = (int(f[1:]) for f in fields if f[0] in "NEL")
    start = len(header) + 1 + 16 * n + tlen + 16 * e + 5
    out = []
    for line in data[start:].decode().splitlines():
        kind, mod, rest = line.split(" ", 2)
        out.append((kind, int(mod), parse_uids(rest.split(" :")[0])))
    return out


def test_uid_set_format_roundtrip() -> None:
    uids = [1, 2, 3, 7, 9, 10, 4294967295]
    assert format_uids(uids) == "1:3,7,9:10,4294967295"
    assert parse_uids(format_uids(uids)) == uids


def test_every_message_has_a_positive_modseq(inbox: MaildirMailbox) -> None:
    before = inbox.highest_modseq()
    assert 0 < before < 2**63
    uids = fill(inbox, 3)
    got = modseqs(inbox)
    assert sorted(got) == uids
    assert all(before < m <= inbox.highest_modseq() for m in got.values())
    assert got[uids[0]] < got[uids[1]] < got[uids[2]]  # each APPEND above the rest


def test_own_store_raises_modseq_only_on_real_change(inbox: MaildirMailbox) -> None:
    a, b = fill(inbox, 2)
    old = modseqs(inbox)
    result = inbox.store_flags_conditional([a, b], ["\\Seen"], "add")
    assert result.changed == [a, b] and result.modified == []
    new_mod = result.messages[a][1]
    assert result.messages[b][1] == new_mod > max(old.values())  # one STORE, one modseq
    assert inbox.highest_modseq() == new_mod
    assert modseqs(inbox) == {a: new_mod, b: new_mod}
    again = inbox.store_flags_conditional([a], ["\\Seen"], "add")  # already set
    assert again.changed == [] and again.messages[a] == (frozenset({"\\Seen"}), new_mod)
    assert inbox.highest_modseq() == new_mod
    assert inbox.sync().flags_changed == []  # own changes are not reported


def test_other_view_change_is_seen_with_its_modseq(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    (uid,) = fill(inbox, 1)
    other = account.open("INBOX")
    result = other.store_flags_conditional([uid], ["\\Flagged"], "add")
    assert inbox.sync().flags_changed == [uid]
    assert inbox.modseq(uid) == result.messages[uid][1] == inbox.highest_modseq()
    assert inbox.messages()[0].flags == frozenset({"\\Flagged"})


def test_foreign_rename_gets_one_new_modseq(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    a, b = fill(inbox, 2)
    other = account.open("INBOX")
    before = inbox.highest_modseq()
    rename_in_cur(inbox, a, "RS")
    assert inbox.sync().flags_changed == [a]
    assert inbox.modseq(a) > before and inbox.modseq(b) < before + 1
    assert other.sync().flags_changed == [a]
    assert other.modseq(a) == inbox.modseq(a)  # recorded once, not per view
    assert [r for r in file_records(inbox) if a in r[2] and r[1] > before] == [
        ("m", inbox.modseq(a), [a])
    ]
    assert other.messages()[0].flags == frozenset({"\\Answered", "\\Seen"})


def test_foreign_rename_in_another_process_is_recorded(
    inbox: MaildirMailbox, tmp_path: Path
) -> None:
    (uid,) = fill(inbox, 1)
    before = inbox.modseq(uid)
    rename_in_cur(inbox, uid, "F")
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from mailsuite.storage.store import MaildirStore\n"
        "box = MaildirStore(Path(sys.argv[1])).account('bob@example.org').open('INBOX')\n"
        "print(box.modseq(int(sys.argv[2])))\n"
    )
    # A fresh process has no snapshot older than the rename (the index is
    # the one this view saved before it), and still records the change.
    out = subprocess.run(
        [sys.executable, "-c", script, str(inbox.path.parents[1]), str(uid)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    theirs = int(out.stdout)
    assert theirs > before
    inbox.sync()
    assert inbox.modseq(uid) == theirs


def test_delivery_and_dropped_files_get_modseqs(
    inbox: MaildirMailbox, store: MaildirStore
) -> None:
    fill(inbox, 1)
    before = inbox.highest_modseq()
    agent = MaildirDeliveryAgent(store)
    d = agent.begin(Envelope("a@example.org", ["bob@example.org"]))
    d.write(b"Subject: delivered\r\n\r\nhi\r\n")
    (res,) = d.commit({"bob@example.org": [LocalTarget("bob@example.org")]})
    assert res.error is None
    (inbox.path / "new" / "foreign.file").write_bytes(b"Subject: x\r\n\r\n")
    added = inbox.sync().added
    assert len(added) == 2
    assert all(inbox.modseq(u) > before for u in added)
    assert inbox.highest_modseq() >= max(inbox.modseq(u) for u in added)


def test_copy_gets_modseqs_in_the_destination(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    uids = fill(inbox, 2)
    sent = account.open("Sent")
    before = sent.highest_modseq()
    mapping = inbox.copy_to(uids, sent)
    sent.sync()
    assert all(sent.modseq(u) > before for u in mapping.values())


def test_unchangedsince(inbox: MaildirMailbox) -> None:
    a, b, c = fill(inbox, 3)
    inbox.store_flags([b], ["\\Answered"], "add")
    mod_a, mod_b = inbox.modseq(a), inbox.modseq(b)
    assert mod_a < mod_b
    result = inbox.store_flags_conditional([a, b, c, 99], ["\\Deleted"], "add", mod_a)
    assert result.modified == [b, c]  # c was appended after a: higher modseq
    assert list(result.messages) == [a] and result.changed == [a]
    assert inbox.messages()[1].flags == frozenset({"\\Answered"})
    assert inbox.modseq(b) == mod_b  # untouched
    # equal passes (RFC 7162 §3.1.3: "equal to or less than")
    now_b = inbox.modseq(b)
    assert inbox.store_flags_conditional([b], ["\\Seen"], "add", now_b).modified == []
    # UNCHANGEDSINCE 0 always fails (every modseq is positive)
    zero = inbox.store_flags_conditional([a, b, c], ["$MDNSent"], "add", 0)
    assert zero.modified == [a, b, c] and not zero.messages
    # a no-op that passes still reports the current modseq
    noop = inbox.store_flags_conditional([b], ["\\Seen"], "add", inbox.highest_modseq())
    assert noop.messages[b] == (frozenset({"\\Answered", "\\Seen"}), inbox.modseq(b))


def test_unchangedsince_sees_a_change_made_by_another_view(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    (uid,) = fill(inbox, 1)
    known = inbox.modseq(uid)
    account.open("INBOX").store_flags([uid], ["\\Flagged"], "add")
    # no sync in between: the store itself reads the log under the lock
    result = inbox.store_flags_conditional([uid], ["\\Seen"], "add", known)
    assert result.modified == [uid]


def test_unchangedsince_sees_a_foreign_rename(inbox: MaildirMailbox) -> None:
    (uid,) = fill(inbox, 1)
    known = inbox.modseq(uid)
    rename_in_cur(inbox, uid, "F")
    result = inbox.store_flags_conditional([uid], ["\\Seen"], "add", known)
    assert result.modified == [uid]
    assert inbox.modseq(uid) > known


def test_changed_since(inbox: MaildirMailbox) -> None:
    a, b, c = fill(inbox, 3)
    mark = inbox.highest_modseq()
    inbox.store_flags([c, a], ["\\Seen"], "add")
    assert inbox.changed_since(mark) == [a, c]
    assert inbox.changed_since(inbox.highest_modseq()) == []
    assert inbox.changed_since(0) == [a, b, c]


def test_expunged_since(inbox: MaildirMailbox, account: MaildirAccount) -> None:
    a, b, c, d = fill(inbox, 4)
    mark = inbox.highest_modseq()
    inbox.store_flags([a, b], ["\\Deleted"], "add")
    assert inbox.expunge() == [a, b]
    assert inbox.highest_modseq() > mark
    assert inbox.expunged_since(mark) == ([a, b], True)
    assert inbox.expunged_since(inbox.highest_modseq()) == ([], True)
    mark2 = inbox.highest_modseq()
    # a removal by another process is recorded by the first view that sees it
    pos = list(inbox.uids()).index(c)
    os.unlink(inbox.path / "cur" / inbox.messages()._files[pos])
    other = account.open("INBOX")
    assert c not in other.uids()
    assert other.expunged_since(mark2) == ([c], True)
    assert inbox.sync().expunged == [c]
    assert inbox.expunged_since(mark) == ([a, b, c], True)
    # before the log existed nothing is known: the answer is incomplete
    assert inbox.expunged_since(0)[1] is False
    assert d in inbox.uids()


def test_expunge_log_is_bounded(
    inbox: MaildirMailbox, account: MaildirAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modseq_mod, "MAX_EXPUNGED", 3)
    monkeypatch.setattr(modseq_mod, "COMPACT_MIN", 0)
    uids = fill(inbox, 8)
    marks = []
    for uid in uids[:6]:
        marks.append(inbox.highest_modseq())
        inbox.store_flags([uid], ["\\Deleted"], "add")
        inbox.expunge([uid])
    for view in (inbox, account.open("INBOX")):  # in memory, and from the file
        gone, complete = view.expunged_since(marks[0])
        assert not complete  # the oldest were forgotten ...
        assert set(uids[3:6]) <= set(gone) <= set(uids[:6])  # ... at least the last 3 kept
        assert view.expunged_since(marks[-1]) == ([uids[5]], True)
    assert len(file_records(inbox)) + 3 < 12  # the file was compacted


def test_modseq_file_deleted_never_goes_backwards(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    uids = fill(inbox, 3)
    inbox.store_flags(uids[:1], ["\\Seen"], "add")
    highest = inbox.highest_modseq()
    (inbox.path / MODSEQ_FILE).unlink()
    # the same view notices at its next sync: every message changed
    assert inbox.sync().flags_changed == uids
    assert min(modseqs(inbox).values()) > highest
    (inbox.path / MODSEQ_FILE).unlink()
    fresh = account.open("INBOX")
    assert min(modseqs(fresh).values()) > highest
    assert fresh.expunged_since(highest) == ([], False)  # nothing known before the loss


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: b"garbage\n",
        lambda data: data[:20],
        lambda data: data[:30] + bytes([data[30] ^ 1]) + data[31:],  # header bit flip
        lambda data: data + b"m notanumber 1 :2,\n",
        lambda data: data + b"x 1 1\n",  # valid syntax, but a modseq going backwards
    ],
)
def test_corrupt_modseq_file_never_goes_backwards(
    inbox: MaildirMailbox, account: MaildirAccount, damage: object
) -> None:
    uids = fill(inbox, 3)
    inbox.store_flags(uids[1:], ["\\Flagged"], "add")
    before = modseqs(inbox)
    highest = inbox.highest_modseq()
    path = inbox.path / MODSEQ_FILE
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    fresh = account.open("INBOX")
    after = modseqs(fresh)
    assert all(after[u] >= before[u] for u in uids)
    assert fresh.highest_modseq() >= highest
    fresh.store_flags(uids[:1], ["\\Seen"], "add")
    assert fresh.modseq(uids[0]) > highest
    inbox.sync()
    assert all(inbox.modseq(u) >= before[u] for u in uids)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_lost_files_with_clock_set_back_never_go_backwards(tmp_path: Path) -> None:
    clock = FakeClock(time.time() + 10 * 86400)  # ten days ahead ...
    store = MaildirStore(tmp_path / "mail", clock=clock)
    acct = store.account("bob@example.org")
    acct.ensure_created()
    box = acct.open("INBOX")
    uids = fill(box, 2)
    box.store_flags(uids, ["\\Seen"], "add")
    highest = box.highest_modseq()
    clock.now = time.time()  # ... then NTP steps the clock back
    for name in (MODSEQ_FILE, INDEX_FILE):  # both the log and the index hint
        (box.path / name).unlink()
    fresh = acct.open("INBOX")  # the account ceiling still knows
    assert min(modseqs(fresh).values()) > highest
    assert int((acct.root / CEILING_FILE).read_text()) > highest
    fresh.store_flags(uids[:1], ["\\Flagged"], "add")
    assert fresh.modseq(uids[0]) > highest


def test_modseq_restarts_from_index_hint_without_ceiling(tmp_path: Path) -> None:
    clock = FakeClock(time.time() + 86400)
    store = MaildirStore(tmp_path / "mail", clock=clock)
    acct = store.account("bob@example.org")
    acct.ensure_created()
    box = acct.open("INBOX")
    fill(box, 1)
    highest = box.highest_modseq()
    clock.now = time.time()
    (box.path / MODSEQ_FILE).unlink()
    (acct.root / CEILING_FILE).unlink()
    assert min(modseqs(acct.open("INBOX")).values()) > highest


def test_index_cache_deleted_keeps_modseqs(inbox: MaildirMailbox, account: MaildirAccount) -> None:
    uids = fill(inbox, 4)
    inbox.store_flags(uids[1:3], ["\\Seen"], "add")
    inbox.store_flags(uids[2:], ["$Label1"], "add")
    before = modseqs(inbox)
    highest = inbox.highest_modseq()
    (inbox.path / INDEX_FILE).unlink()
    fresh = account.open("INBOX")
    assert modseqs(fresh) == before
    assert fresh.highest_modseq() == highest


def test_foreign_rename_while_index_was_deleted_is_seen_for_logged_messages(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    (uid,) = fill(inbox, 1)  # appended after the log existed: its name is logged
    before = inbox.modseq(uid)
    rename_in_cur(inbox, uid, "S")
    (inbox.path / INDEX_FILE).unlink()
    assert account.open("INBOX").modseq(uid) > before


def test_torn_append_is_ignored_and_repaired(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    a, b = fill(inbox, 2)
    path = inbox.path / MODSEQ_FILE
    with open(path, "ab") as f:
        f.write(b"m 9")  # a writer killed mid-append
    fresh = account.open("INBOX")
    assert fresh.modseq(a) == inbox.modseq(a)
    fresh.store_flags([b], ["\\Seen"], "add")
    assert not path.read_bytes().endswith(b"m 9")
    inbox.sync()
    assert inbox.modseq(b) == fresh.modseq(b) == fresh.highest_modseq()


def test_compaction_keeps_values(
    inbox: MaildirMailbox, account: MaildirAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modseq_mod, "COMPACT_MIN", 200)
    uids = fill(inbox, 6)
    watcher = account.open("INBOX")
    for i in range(20):
        inbox.store_flags(uids[i % 6 : i % 6 + 1], ["\\Seen"], "add" if i % 2 else "remove")
    assert (inbox.path / MODSEQ_FILE).stat().st_size < 1000  # compacted at least once
    assert watcher.sync().flags_changed
    assert modseqs(watcher) == modseqs(inbox) == modseqs(account.open("INBOX"))


def test_uidvalidity_change_restarts_the_log(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    fill(inbox, 1)
    path = inbox.path / MODSEQ_FILE
    data = path.read_bytes()
    header = data.split(b"\n", 1)[0].decode()
    v = next(f for f in header.split() if f.startswith("V"))
    log = modseq_mod.ModseqLog(inbox.path, account.root, time.time)
    assert log.refresh(int(v[1:])) is None and log.valid
    assert log.refresh(int(v[1:]) + 1) is None and not log.valid


CONCURRENT = r"""
import json, sys
from pathlib import Path
from mailsuite.storage.store import MaildirStore
box = MaildirStore(Path(sys.argv[1])).account("bob@example.org").open("INBOX")
uids = list(box.uids())
seen = {}
last = 0
for i in range(int(sys.argv[2])):
    uid = uids[i % len(uids)]
    flag = sys.argv[3]
    res = box.store_flags_conditional([uid], [flag], "add" if i % 2 == 0 else "remove")
    if i % 5 == 0:
        box.sync()
    if uid in res.messages:
        mod = res.messages[uid][1]
        assert mod >= seen.get(uid, 0), (uid, mod, seen.get(uid))
        seen[uid] = mod
    high = box.highest_modseq()
    assert high >= last
    last = high
    for m in box.messages():
        assert m.modseq <= high
print(json.dumps({"seen": seen, "high": last}))
"""


def test_two_processes_storing_never_decrease(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    fill(inbox, 4)
    root = str(inbox.path.parents[1])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, root, "150", flag],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ("\\Seen", "\\Flagged")
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    records = file_records(inbox)
    mods = [r[1] for r in records]
    assert mods == sorted(mods) and len(set(mods)) == len(mods)  # strictly increasing
    final = account.open("INBOX")
    for out, _ in outs:
        result = json.loads(out)
        for uid, mod in result["seen"].items():
            assert final.modseq(int(uid)) >= mod
        assert final.highest_modseq() >= result["high"]
    both = frozenset({"\\Seen", "\\Flagged"})
    # the last operation on the 1st and 3rd message was "add", on the others "remove"
    assert [m.flags for m in final.messages()] == [both, frozenset(), both, frozenset()]


def test_store_follows_other_views_changes_without_a_sync(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    a, b = fill(inbox, 2)
    other = account.open("INBOX")
    theirs = other.store_flags_conditional([a], ["\\Flagged"], "add").messages[a][1]
    mine = inbox.store_flags_conditional([b], ["\\Seen"], "add").messages[b][1]
    assert mine > theirs
    # the store read the log: a's flags and modseq are shown together
    info = inbox.messages()[0]
    assert (info.flags, info.modseq) == (frozenset({"\\Flagged"}), theirs)
    assert inbox.highest_modseq() == mine
    assert inbox.sync().flags_changed == [a]


def test_changed_on_disk_sees_the_log(inbox: MaildirMailbox, account: MaildirAccount) -> None:
    fill(inbox, 1)
    age_dirs(inbox.path)
    inbox.sync()
    assert not inbox.changed_on_disk()
    (inbox.path / MODSEQ_FILE).unlink()
    assert inbox.changed_on_disk()


def test_modified_message_shows_foreign_flags(inbox: MaildirMailbox) -> None:
    (uid,) = fill(inbox, 1)
    known = inbox.modseq(uid)
    rename_in_cur(inbox, uid, "D")
    # the store follows the moved file, finds the change unlogged: MODIFIED
    result = inbox.store_flags_conditional([uid], ["\\Seen"], "add", known)
    assert result.modified == [uid] and not result.messages
    assert inbox.messages()[0].flags == frozenset({"\\Draft"})
    assert inbox.modseq(uid) > known


def test_restored_file_gets_a_new_modseq(inbox: MaildirMailbox, account: MaildirAccount) -> None:
    a, _b = fill(inbox, 2)
    pos = list(inbox.uids()).index(a)
    name = inbox.messages()._files[pos]
    data = (inbox.path / "cur" / name).read_bytes()
    inbox.store_flags([a], ["\\Deleted"], "add")
    inbox.expunge()
    mark = inbox.highest_modseq()
    assert inbox.expunged_since(mark - 1) == ([a], True)
    (inbox.path / "cur" / name).write_bytes(data)  # restored from a backup
    assert inbox.sync().added == [a]
    assert inbox.modseq(a) > mark
    assert inbox.expunged_since(mark - 1) == ([], True)
    assert account.open("INBOX").modseq(a) == inbox.modseq(a)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0, max_value=400),
    junk=st.binary(max_size=40),
    flip=st.integers(min_value=0, max_value=400),
)
def test_damaged_log_is_rejected_or_read_never_crashes(
    tmp_path: Path, cut: int, junk: bytes, flip: int
) -> None:
    folder = tmp_path / f"f{cut}-{flip}-{len(junk)}"
    folder.mkdir(exist_ok=True)
    log = modseq_mod.ModseqLog(folder, tmp_path, time.time)
    from mailsuite.storage.locking import DotLock

    with DotLock(log.lock_path):
        log.refresh(7)
        log.create_locked(7, 3, 0)
        log.record_locked({1: "2,S", 2: "2,S", 5: "2,"}, [4])
        log.rewrite_locked()
        log.record_locked({6: "2,F"}, [])
    highest = log.highest
    data = (folder / MODSEQ_FILE).read_bytes()
    data = data[: cut or len(data)] + junk
    if data and flip < len(data):
        data = data[:flip] + bytes([data[flip] ^ 0x20]) + data[flip + 1 :]
    (folder / MODSEQ_FILE).write_bytes(data)
    fresh = modseq_mod.ModseqLog(folder, tmp_path, time.time)
    fresh.refresh(7)
    if fresh.valid:
        assert fresh.base <= fresh.highest
        assert all(0 < fresh.modseq_of(u) <= fresh.highest for u in range(1, 8))
    else:
        with DotLock(fresh.lock_path):
            fresh.create_locked(7, 6, highest)
        assert fresh.base > highest


def test_highest_stays_below_an_unreported_expunge(
    inbox: MaildirMailbox, account: MaildirAccount
) -> None:
    a, b = fill(inbox, 2)
    other = account.open("INBOX")
    other.store_flags([a], ["\\Deleted"], "add")
    assert other.expunge() == [a]
    x_mod = other.expunged_at([a, b])[a]
    assert other.expunged_at([b]) == {}
    # this view reads the log during its own STORE, before it reports the expunge
    mine = inbox.store_flags_conditional([b], ["\\Seen"], "add").messages[b][1]
    assert mine > x_mod
    assert inbox.highest_modseq() == x_mod - 1  # RFC 7162 §3.2: below the delayed expunge
    assert inbox.expunged_at([a]) == {a: x_mod}
    assert inbox.expunged_since(0)[0] == []  # a is still shown: not vanished yet
    assert inbox.sync().expunged == [a]
    assert inbox.expunged_since(0)[0] == [a]
    assert inbox.highest_modseq() == mine
