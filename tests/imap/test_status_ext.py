"""STATUS=SIZE (RFC 8438) and APPENDLIMIT (RFC 7889): capabilities and the
STATUS items, after the RFCs' examples."""

from __future__ import annotations

import re
from pathlib import Path

from tests.imap.support import Client, add_user, deliver, make_context, message

LIMIT = 257890  # RFC 7889 §3.1's example value


def client(tmp_path: Path) -> Client:
    ctx = make_context(tmp_path, imap={"max_literal_size": LIMIT})
    add_user(ctx)
    c = Client(ctx)
    c.login()
    return c


def test_capabilities_after_login_only(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, imap={"max_literal_size": LIMIT})
    add_user(ctx)
    c = Client(ctx)
    before = c.ok("CAPABILITY")
    assert b"APPENDLIMIT" not in before and b"STATUS=SIZE" not in before
    c.login()
    caps = c.ok("CAPABILITY").split(b"\r\n")[0].split()
    assert b"APPENDLIMIT=257890" in caps and b"STATUS=SIZE" in caps


def test_rfc8438_example_size_is_sum_of_rfc822_sizes(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE frop")
    for i in range(8):
        deliver(c.ctx, message(i, b"x" * (100 * i) + b"\r\n"), folder="frop")
    out = c.ok("STATUS frop (MESSAGES SIZE UIDNEXT)")
    m = re.search(rb'\* STATUS "frop" \(MESSAGES 8 SIZE (\d+) UIDNEXT 9\)\r\n', out)
    assert m, out
    c.ok("SELECT frop")
    sizes = [int(v) for v in re.findall(rb"RFC822.SIZE (\d+)", c.ok("FETCH 1:* (RFC822.SIZE)"))]
    assert len(sizes) == 8 and int(m.group(1)) == sum(sizes)


def test_size_of_empty_mailbox_and_after_expunge(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert b'* STATUS "INBOX" (SIZE 0)' in c.ok("STATUS INBOX (SIZE)")
    deliver(c.ctx, message(1))
    deliver(c.ctx, message(22))
    c.ok("SELECT INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    out = c.ok("STATUS INBOX (size)")  # items are case-insensitive
    assert b'* STATUS "INBOX" (SIZE %d)' % len(message(22)) in out


def test_rfc7889_example_status_appendlimit(tmp_path: Path) -> None:
    c = client(tmp_path)
    out = c.raw(b"t1 STATUS INBOX (APPENDLIMIT)\r\n")
    assert out == b'* STATUS "INBOX" (APPENDLIMIT 257890)\r\nt1 OK STATUS completed\r\n'


def test_append_over_the_limit_is_toobig(tmp_path: Path) -> None:
    # RFC 7889 §4: a message over the limit is refused with TOOBIG
    c = client(tmp_path)
    out = c.raw(b"a APPEND INBOX {%d}\r\n" % (LIMIT + 1))
    assert out.startswith(b"a NO [TOOBIG]"), out
    msg = b"x" * (LIMIT - 2) + b"\r\n"
    assert c.raw(b"b APPEND INBOX {%d}\r\n" % len(msg)).startswith(b"+ ")
    assert c.raw(msg + b"\r\n").startswith(b"b OK [APPENDUID ")


def test_all_items_together(tmp_path: Path) -> None:
    c = client(tmp_path)
    deliver(c.ctx, message(1))
    out = c.ok("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE APPENDLIMIT)")
    assert re.search(
        rb'\* STATUS "INBOX" \(MESSAGES 1 RECENT 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 '
        rb"SIZE %d APPENDLIMIT 257890\)" % len(message(1)),
        out,
    ), out
    assert c.tagged(c.cmd("STATUS INBOX (SIZE BOGUS)")).startswith(b"t3 BAD")
    assert c.tagged(c.cmd("STATUS INBOX ()")).startswith(b"t4 BAD")
