"""The twisted.mail.imap4 defects of DESIGN.md §2, each against our server."""

from __future__ import annotations

from pathlib import Path

from tests.imap.support import PASSWORD, USER, Client, add_user, deliver, make_context, message


def session(tmp_path: Path, *messages: bytes, tls: bool = True, **kw: object) -> Client:
    ctx = make_context(tmp_path, **kw)  # type: ignore[arg-type]
    add_user(ctx)
    for m in messages or (message(1), message(2)):
        deliver(ctx, m)
    c = Client(ctx, tls=tls)
    if tls:
        c.login()
        c.ok("SELECT INBOX")
    return c


def test_search_text_and_date_keys_work(tmp_path: Path) -> None:
    c = session(tmp_path)
    assert b"* SEARCH 2\r\n" in c.ok('SEARCH TEXT "message 2"')
    assert b"* SEARCH 1 2\r\n" in c.ok("SEARCH SENTON 7-Feb-1994")
    assert b"* SEARCH 1 2\r\n" in c.ok("SEARCH SINCE 1-Jan-1990")


def test_append_without_flags(tmp_path: Path) -> None:
    c = session(tmp_path)
    out = c.raw(b"a APPEND INBOX {12}\r\n")
    assert out == b"+ Ready for literal data\r\n"
    assert c.raw(b"Subject: x\r\n\r\n").startswith(b"* 3 EXISTS")


def test_status_unknown_item_answers_bad(tmp_path: Path) -> None:
    c = session(tmp_path)
    assert c.cmd("STATUS INBOX (MESSAGES X-UNKNOWN)").startswith(b"t3 BAD")


def test_partial_fetch_slice(tmp_path: Path) -> None:
    c = session(tmp_path)
    out = c.ok("FETCH 1 BODY.PEEK[]<2.5>")
    assert b"BODY[]<2> {5}\r\nom: a)" in out


def test_seen_set_by_non_peek_fetch(tmp_path: Path) -> None:
    c = session(tmp_path)
    c.ok("FETCH 1 BODY[]")
    assert b"* SEARCH 1\r\n" in c.ok("SEARCH SEEN")


def test_other_sessions_expunge_is_reported(tmp_path: Path) -> None:
    c = session(tmp_path)
    other = Client(c.ctx)
    other.login()
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    out = c.ok("NOOP")
    assert b"* 1 EXPUNGE\r\n" in out
    out = c.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert b"Subject: message 2" in out  # never the wrong message


def test_raw_8bit_header_and_trailing_semicolon(tmp_path: Path) -> None:
    nasty = (
        b"Subject: caf\xe9 \xff\xfe\r\nFrom: J\xf6rg <j@example.test>\r\n"
        b"Content-Type: text/plain;\r\n\r\nbody \xe9\r\n"
    )
    c = session(tmp_path, nasty)
    out = c.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE BODY[] FLAGS)")
    assert b"caf\xe9" in out
    assert b"* SEARCH 1\r\n" in c.ok("SEARCH SUBJECT caf")
    assert not c.closed


def test_quoted_string_escapes(tmp_path: Path) -> None:
    c = session(tmp_path)
    c.ok('CREATE "quote\\"d"')
    out = c.ok('LIST "" "quote*"')
    assert b'"quote\\"d"' in out
    (tmp_path / "b").mkdir()
    ctx = make_context(tmp_path / "b")
    add_user(ctx, password='pa"ss\\word')
    c2 = Client(ctx)
    assert c2.cmd(f'LOGIN {USER} "pa\\"ss\\\\word"').startswith(b"t1 OK")


def test_sequence_set_with_8000_ranges(tmp_path: Path) -> None:
    c = session(tmp_path, imap={"max_line_length": 256 * 1024})
    ranges = ",".join(f"{i}:{i + 1}" for i in range(1, 32000, 4))
    out = c.ok(f"UID FETCH {ranges} (FLAGS)")
    assert out.count(b"FETCH (") == 2
    out = c.ok(f"UID SEARCH UID {ranges}")
    assert b"* SEARCH 1 2\r\n" in out


def test_command_line_over_16k(tmp_path: Path) -> None:
    c = session(tmp_path)
    big = " ".join(["SUBJECT x"] * 2500)  # ~25 KiB
    out = c.ok(f"SEARCH {big}")
    assert b"* SEARCH\r\n" in out


def test_idle_ends_only_on_done(tmp_path: Path) -> None:
    c = session(tmp_path)
    c.cmd("IDLE")
    assert c.raw(b"a1 NOOP\r\n") == b"* BAD Expected DONE\r\n"
    assert c.raw(b"\r\n") == b"* BAD Expected DONE\r\n"
    assert c.raw(b"DONE\r\n") == b"t3 OK IDLE terminated\r\n"


def test_starttls_plaintext_injection(tmp_path: Path) -> None:
    c = session(tmp_path, tls=False)
    out = c.raw(f'x STARTTLS\r\ny LOGIN {USER} "{PASSWORD}"\r\nz SELECT INBOX\r\n')
    assert out == b"x OK Begin TLS negotiation now\r\n"
    assert c.proto.user is None
    assert c.cmd("SELECT INBOX").startswith(b"t1 BAD")
