"""WITHIN (RFC 5032): SEARCH OLDER n / YOUNGER n against the internal date,
relative to the server clock (``context.reactor.seconds()``)."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

from tests.imap.support import USER, Client, add_user, make_context, message

NOW = 1_900_000_000  # the server clock of these tests (2030)
DAY = 86400


def setup(tmp_path: Path) -> Client:
    """INBOX holds messages 1..6 received 5 days, 4 days, 2 days, 1 day,
    1 hour ago and exactly 3 days ago; messages 2 and 4 are \\Seen."""
    ctx = make_context(tmp_path)
    add_user(ctx)
    account = ctx.store.account(USER)
    account.ensure_created()
    box = account.open("INBOX")
    ages = [5 * DAY, 4 * DAY, 2 * DAY, DAY, 3600, 259200]
    for i, age in enumerate(ages, 1):
        when = datetime.datetime.fromtimestamp(NOW - age, datetime.UTC)
        flags = ["\\Seen"] if i in (2, 4) else []
        box.append(io.BytesIO(message(i)), flags, when)
    ctx.reactor.advance(NOW)  # type: ignore[attr-defined]
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    return c


def search(c: Client, keys: str) -> list[int]:
    out = c.ok(keys)
    line = next(x for x in out.split(b"\r\n") if x.startswith(b"* SEARCH"))
    return [int(v) for v in line.split()[2:]]


def test_capability_advertised_after_login(tmp_path: Path) -> None:
    c = setup(tmp_path)
    assert b" WITHIN" in c.ok("CAPABILITY")


def test_rfc_example_unseen_younger_three_days(tmp_path: Path) -> None:
    # RFC 5032 §4: C: a1 SEARCH UNSEEN YOUNGER 259200
    c = setup(tmp_path)
    assert search(c, "SEARCH UNSEEN YOUNGER 259200") == [3, 5, 6]


def test_target_time_matches_both_keys_exactly(tmp_path: Path) -> None:
    # RFC 5032 §2: OLDER matches "less recent than or equal", YOUNGER "more
    # recent than or equal" to the target time, to the second.
    c = setup(tmp_path)
    assert search(c, "SEARCH OLDER 259200") == [1, 2, 6]
    assert search(c, "SEARCH YOUNGER 259200") == [3, 4, 5, 6]
    assert search(c, "SEARCH YOUNGER 259199") == [3, 4, 5]
    assert search(c, "SEARCH OLDER 259201") == [1, 2]


def test_follows_the_server_clock(tmp_path: Path) -> None:
    c = setup(tmp_path)
    assert search(c, "SEARCH YOUNGER 7200") == [5]
    for _ in range(6):  # two hours pass (a command every 20 minutes keeps the session)
        c.ctx.reactor.advance(1200)  # type: ignore[attr-defined]
        c.ok("NOOP")
    assert search(c, "SEARCH YOUNGER 7200") == []
    assert search(c, "SEARCH OLDER 7200") == [1, 2, 3, 4, 5, 6]


def test_combined_with_other_keys_and_uid_search(tmp_path: Path) -> None:
    c = setup(tmp_path)
    assert search(c, "SEARCH OR YOUNGER 3601 OLDER 432000 NOT SEEN") == [1, 5]
    assert search(c, "UID SEARCH (YOUNGER 200000 OLDER 3600) SEEN") == [4]
    assert search(c, "SEARCH NOT OLDER 100000") == [4, 5]


def test_bad_intervals(tmp_path: Path) -> None:
    c = setup(tmp_path)
    for keys in ("YOUNGER", "YOUNGER 0", "OLDER -5", "OLDER abc", "YOUNGER 99999999999"):
        out = c.cmd("SEARCH " + keys)
        assert c.tagged(out).startswith(b"t%d BAD" % c.n), (keys, out)
