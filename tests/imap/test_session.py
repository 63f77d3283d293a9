"""Session state machine, authentication, TLS, literals and limits."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.imap.support import PASSWORD, USER, Client, add_user, make_context


def ctx_user(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    ctx = make_context(tmp_path, **kw)  # type: ignore[arg-type]
    add_user(ctx)
    return ctx


def test_greeting_and_capabilities_tls(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    out = c.ok("CAPABILITY")
    assert b"AUTH=PLAIN" in out and b"LOGINDISABLED" not in out and b"STARTTLS" not in out


def test_logindisabled_before_starttls(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path), tls=False)
    caps = c.ok("CAPABILITY")
    assert b"LOGINDISABLED" in caps and b"STARTTLS" in caps and b"AUTH=" not in caps
    out = c.cmd(f'LOGIN {USER} "{PASSWORD}"')
    assert c.tagged(out).startswith(b"t2 NO [PRIVACYREQUIRED]")
    out = c.cmd("AUTHENTICATE PLAIN")
    assert c.tagged(out).startswith(b"t3 NO [PRIVACYREQUIRED]")


def test_allow_plaintext(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path, allow_plaintext=True), tls=False)
    assert b"LOGINDISABLED" not in c.ok("CAPABILITY")
    c.login()


def test_starttls_discards_pipelined_plaintext(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path), tls=False)
    out = c.raw(f'a STARTTLS\r\nb LOGIN {USER} "{PASSWORD}"\r\n')
    assert out == b"a OK Begin TLS negotiation now\r\n"
    assert c.transport.tls_started == "tls-options"
    assert c.proto.tls_active
    out = c.cmd("NOOP")
    assert out.startswith(b"t1 OK")
    assert b"STARTTLS" not in c.ok("CAPABILITY")
    assert c.cmd("STARTTLS").startswith(b"t3 BAD")


def test_no_starttls_on_implicit_tls(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path), tls=True, role="imaps", implicit_tls=True)
    assert c.cmd("STARTTLS").startswith(b"t1 BAD")


def test_login_wrong_password(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.cmd(f"LOGIN {USER} wrong")
    assert c.tagged(out) == b"t1 NO [AUTHENTICATIONFAILED] Authentication failed"
    out = c.cmd("SELECT INBOX")
    assert out.startswith(b"t2 BAD")


def test_login_with_literals(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.raw(b"a LOGIN {%d}\r\n" % len(USER))
    assert out == b"+ Ready for literal data\r\n"
    out = c.raw(USER.encode() + b" {%d+}\r\n" % len(PASSWORD) + PASSWORD.encode() + b"\r\n")
    assert b"a OK [CAPABILITY" in out


def test_authenticate_plain_with_initial_response(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    out = c.cmd(f"AUTHENTICATE PLAIN {ir}")
    assert c.tagged(out).startswith(b"t1 OK")
    assert c.proto.user.address == USER


def test_authenticate_plain_continuation_and_cancel(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.cmd("AUTHENTICATE PLAIN") == b"+ \r\n"
    assert c.raw(b"*\r\n") == b"t1 BAD Authentication cancelled\r\n"
    assert c.cmd("AUTHENTICATE PLAIN") == b"+ \r\n"
    resp = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    out = c.raw(resp + b"\r\n")
    assert out.startswith(b"t2 OK")


def test_authenticate_login(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.cmd("AUTHENTICATE LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert c.raw(base64.b64encode(USER.encode()) + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    out = c.raw(base64.b64encode(b"nope") + b"\r\n")
    assert out.startswith(b"t1 NO [AUTHENTICATIONFAILED]")


def test_authenticate_garbage(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.cmd("AUTHENTICATE PLAIN !!!!").startswith(b"t1 BAD")
    assert c.cmd("AUTHENTICATE CRAM-MD5").startswith(b"t2 NO")


def test_password_not_logged(tmp_path: Path) -> None:
    from twisted.logger import formatEvent, globalLogPublisher

    seen: list[str] = []

    def observer(event: dict[str, object]) -> None:
        seen.append(formatEvent(event) + repr(event))

    globalLogPublisher.addObserver(observer)
    try:
        ctx = ctx_user(tmp_path)
        Client(ctx).login()
        Client(ctx).cmd(f"LOGIN {USER} wrong-secret")
        ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        Client(ctx).cmd(f"AUTHENTICATE PLAIN {ir}")
    finally:
        globalLogPublisher.removeObserver(observer)
    text = "\n".join(seen)
    assert "login alice@example.test" in text  # the log is on, with connection ids
    for secret in (PASSWORD, "wrong-secret", ir):
        assert secret not in text


def test_append_literal8(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    c.login()
    msg = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\na\0b\r\n"
    out = c.raw(b"a APPEND INBOX ~{%d}\r\n" % len(msg))
    assert out == b"+ Ready for literal data\r\n"
    assert c.raw(msg + b"\r\n").startswith(b"a OK [APPENDUID")
    out = c.raw(b"b APPEND INBOX {3+}\r\na\0b\r\n")
    assert out.startswith(b"b BAD")  # NUL only in literal8


def test_unknown_and_wrong_state(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.cmd("FROB").startswith(b"t1 BAD")
    assert c.cmd("FETCH 1 FLAGS").startswith(b"t2 BAD")
    c.login()
    assert c.cmd("FETCH 1 FLAGS") == b"t4 BAD No mailbox selected\r\n"
    assert c.cmd("LOGIN a b").startswith(b"t5 BAD")


def test_bad_tag_and_empty_line(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.raw(b"\r\n").startswith(b"* BAD")
    assert c.raw(b"a+b NOOP\r\n").startswith(b"* BAD")
    assert c.raw(b"abc\r\n").startswith(b"abc BAD")


def test_logout(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.cmd("LOGOUT")
    assert out == b"* BYE Logging out\r\nt1 OK LOGOUT completed\r\n"
    assert c.closed


def test_line_too_long_is_answered_and_connection_survives(tmp_path: Path) -> None:
    ctx = ctx_user(tmp_path)
    c = Client(ctx)
    c.login()
    long = b"x SEARCH " + b"1," * 40000 + b"1\r\n"  # 80 KiB > 64 KiB limit
    out = c.raw(long)
    assert out == b"x BAD [TOOBIG] Command line too long\r\n"
    c.ok("NOOP")


def test_line_over_16k_works(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    c.login()
    c.ok("SELECT INBOX")
    out = c.cmd("NOOP " + "x" * 20000)
    assert c.tagged(out).startswith(b"t3 BAD")  # NOOP takes no args, but answered
    assert not c.closed


def test_unauth_literal_limit(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.raw(b"a LOGIN {100000}\r\n")
    assert out == b"a NO [TOOBIG] Literal too big\r\n"
    c.ok("NOOP")


def test_non_sync_literal_over_limit_is_discarded(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.raw(b"a LOGIN {9000+}\r\n" + b"b NOOP\r\n" * 1125 + b" x\r\n")
    assert out == b"a NO [TOOBIG] Literal too big\r\n"
    assert c.ok("NOOP").startswith(b"t1 OK")


def test_append_size_checked_before_continuation(tmp_path: Path) -> None:
    ctx = ctx_user(tmp_path, imap={"max_literal_size": 1000})
    c = Client(ctx)
    c.login()
    out = c.raw(b"a APPEND INBOX {2000}\r\n")
    assert out == b"a NO [TOOBIG] Literal too big\r\n"
    out = c.raw(b"b APPEND INBOX {20}\r\n")
    assert out == b"+ Ready for literal data\r\n"
    out = c.raw(b"Subject: x\r\n\r\nhello!\r\n")
    assert out.startswith(b"b OK [APPENDUID ")


def test_append_quota_checked_before_continuation(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx, quota_bytes=1000)
    c = Client(ctx)
    c.login()
    out = c.raw(b"a APPEND INBOX {5000}\r\n")
    assert out == b"a NO [OVERQUOTA] Quota exceeded\r\n"


def test_append_message_count_quota(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_user(ctx, quota_messages=1)
    c = Client(ctx)
    c.login()
    assert c.raw(b"a APPEND INBOX {7+}\r\nHi: x\r\n\r\n").startswith(b"a OK")
    assert c.raw(b"b APPEND INBOX {7}\r\n") == b"b NO [OVERQUOTA] Quota exceeded\r\n"


def test_timeouts(tmp_path: Path) -> None:
    ctx = ctx_user(tmp_path)
    c = Client(ctx)
    ctx.reactor.advance(61)  # type: ignore[attr-defined]
    assert c.closed and b"BYE" in c.read()
    c = Client(ctx)
    c.login()
    ctx.reactor.advance(1700)  # type: ignore[attr-defined]
    assert not c.closed
    ctx.reactor.advance(101)  # type: ignore[attr-defined]
    assert c.closed


def test_id_namespace_enable(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    out = c.ok('ID ("name" "test" "version" NIL)')
    assert b'* ID ("name" "mailsuite"' in out
    c.ok("ID NIL")
    c.login()
    assert b'* NAMESPACE (("" "/")) NIL NIL' in c.ok("NAMESPACE")
    assert b"* ENABLED\r\n" in c.ok("ENABLE X-UNKNOWN")
    caps = c.ok("CAPABILITY")
    for cap in (
        b"IDLE",
        b"UIDPLUS",
        b"MOVE",
        b"NAMESPACE",
        b"UNSELECT",
        b"SPECIAL-USE",
        b"CHILDREN",
        b"LITERAL+",
        b"SASL-IR",
        b"BINARY",
        b"ENABLE",
        b"ID",
    ):
        assert cap in caps


def test_overlong_authenticate_response(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    assert c.cmd("AUTHENTICATE PLAIN") == b"+ \r\n"
    assert c.raw(b"QUFB" * 5000 + b"\r\n") == b"t1 BAD Invalid SASL response\r\n"
    assert c.cmd("NOOP").startswith(b"t2 OK")


def test_overlong_line_during_idle(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    c.login()
    c.cmd("IDLE")
    assert c.raw(b"x" * 70000 + b"\r\n") == b"* BAD Expected DONE\r\n"
    assert c.raw(b"DONE\r\n") == b"t2 OK IDLE terminated\r\n"


def test_large_append_is_spooled_not_buffered(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    c.login()
    body = b"".join(b"line %07d of a large message\r\n" % i for i in range(40000))
    msg = b"Subject: big\r\n\r\n" + body
    assert c.raw(b"a APPEND INBOX {%d}\r\n" % len(msg)) == b"+ Ready for literal data\r\n"
    for i in range(0, len(msg) - 1, 65536):
        c.raw(msg[i : min(i + 65536, len(msg) - 1)])
        assert c.proto._literal is None and c.proto._spool is not None  # on disk, not in memory
    spool = c.proto._spool
    out = c.raw(msg[-1:] + b"\r\n")
    assert out.startswith(b"a OK [APPENDUID ")
    assert spool.closed
    c.ok("SELECT INBOX")
    out = c.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT]<0.20>)")
    assert b"RFC822.SIZE %d" % len(msg) in out and b"line 0000000 of a la" in out


def test_spooled_literal_with_nul_is_refused(tmp_path: Path) -> None:
    c = Client(ctx_user(tmp_path))
    c.login()
    msg = b"Subject: x\r\n\r\n" + b"a" * 300000 + b"\0\r\n"
    out = c.raw(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert out == b"a BAD NUL in literal\r\n"
    msg8 = b"Subject: x\r\n\r\n" + b"\0" * 300000
    out = c.raw(b"b APPEND INBOX ~{%d+}\r\n" % len(msg8) + msg8 + b"\r\n")
    assert out.startswith(b"b OK [APPENDUID")


def test_connection_lost_during_spooled_literal(tmp_path: Path) -> None:
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    c = Client(ctx_user(tmp_path))
    c.login()
    c.raw(b"a APPEND INBOX {400000+}\r\n" + b"x" * 1000)
    spool = c.proto._spool
    c.proto.connectionLost(Failure(ConnectionLost()))
    assert spool.closed
