"""AUTHORIZATION state over StringTransport: greeting, CAPA, STLS, USER/PASS, AUTH."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailsuite.errors import ErrorKind, MailError
from mailsuite.pop3 import maildrop
from mailsuite.pop3.server import POP3Factory
from tests.pop3.support import (
    PASSWORD,
    Client,
    TLSRecordingTransport,
    add_user,
    make_context,
)

pytest.importorskip("mailsuite.storage.store")

USER = "alice@example.test"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def factory(tmp_path: Path) -> POP3Factory:
    ctx = make_context(tmp_path)
    add_user(ctx, USER)
    return POP3Factory(ctx, "pop3")


@pytest.fixture
def plain_factory(tmp_path: Path) -> POP3Factory:
    """auth.allow_plaintext = true (USER/PASS without TLS)."""
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER)
    return POP3Factory(ctx, "pop3")


def capa(client: Client) -> list[bytes]:
    lines = client.lines("CAPA")
    assert lines[0].startswith(b"+OK") and lines[-1] == b"."
    return lines[1:-1]


def test_greeting_has_no_apop_timestamp_and_apop_is_unknown(factory: POP3Factory) -> None:
    c = Client(factory)
    assert c.greeting.startswith(b"+OK pop.example.test")
    assert b"<" not in c.greeting  # no RFC 1939 §7 APOP banner
    assert c.send("APOP alice 0123456789abcdef0123456789abcdef").startswith(b"-ERR")


def test_capa_on_plain_port_offers_stls_not_plaintext_login(factory: POP3Factory) -> None:
    caps = capa(Client(factory))
    for cap in (b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING", b"STLS"):
        assert cap in caps
    assert b"IMPLEMENTATION mailsuite" in caps
    assert not [x for x in caps if x.startswith((b"USER", b"SASL", b"EXPIRE", b"LOGIN-DELAY"))]


def test_user_pass_and_auth_refused_before_stls(factory: POP3Factory) -> None:
    c = Client(factory)
    assert c.send("USER " + USER).startswith(b"-ERR")
    assert c.send("PASS " + PASSWORD).startswith(b"-ERR")
    assert c.send("AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}".encode())).startswith(b"-ERR")
    assert c.proto.state == "AUTHORIZATION"


def test_stls_discards_pipelined_plaintext(factory: POP3Factory) -> None:
    transport = TLSRecordingTransport()
    c = Client(factory, transport=transport)
    c.proto.dataReceived(b"STLS\r\nUSER " + USER.encode() + b"\r\nPASS x\r\n")
    assert c.read() == b"+OK Begin TLS negotiation now\r\n"
    assert transport.tls_started == "tls-options"
    assert c.proto.tls_active
    caps = capa(c)
    assert b"STLS" not in caps and b"USER" in caps and b"SASL PLAIN LOGIN" in caps
    assert c.send("STLS").startswith(b"-ERR")
    assert c.login(USER).startswith(b"+OK")


def test_no_stls_without_tls_config_and_on_implicit_tls(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, tls=False)
    c = Client(POP3Factory(ctx, "pop3"))
    assert b"STLS" not in capa(c)
    assert c.send("STLS").startswith(b"-ERR")
    ctx2 = make_context(tmp_path / "b")
    s = Client(POP3Factory(ctx2, "pop3s", True), tls=True)
    caps = capa(s)
    assert b"STLS" not in caps and b"USER" in caps


def test_user_pass_login(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    assert c.send("PASS x").startswith(b"-ERR")  # PASS without USER
    assert c.login(USER) == b"+OK Logged in, 0 messages (0 octets)\r\n"
    assert c.proto.state == "TRANSACTION"
    assert c.send("USER x").startswith(b"-ERR")  # not in TRANSACTION
    capas = capa(c)
    assert b"USER" not in capas and b"STLS" not in capas and b"TOP" in capas


def test_wrong_password_gets_auth_code_and_three_failures_close(
    plain_factory: POP3Factory,
) -> None:
    c = Client(plain_factory)
    for i in range(3):
        reply = c.login(USER, "wrong")
        assert reply.startswith(b"-ERR [AUTH] ")
        assert b"wrong" not in reply
        assert c.closed == (i == 2)


def test_unknown_user_same_answer(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    assert c.send("USER nobody@example.test") == b"+OK Send PASS\r\n"
    assert c.send("PASS x") == b"-ERR [AUTH] Authentication failed\r\n"


def test_auth_plain_initial_response(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    reply = c.send("AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}".encode()))
    assert reply.startswith(b"+OK Logged in")


def test_auth_plain_with_challenge_and_login(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    assert c.send("AUTH PLAIN") == b"+ \r\n"
    assert c.send(b64(f"{USER}\0{USER}\0{PASSWORD}".encode())).startswith(b"+OK")
    c2 = Client(plain_factory)
    assert c2.send("AUTH LOGIN " + b64(USER.encode())) == b"+ UGFzc3dvcmQ6\r\n"
    assert c2.send(b64(PASSWORD.encode())).startswith(b"+OK")
    c3 = Client(plain_factory)
    assert c3.send("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert c3.send(b64(USER.encode())) == b"+ UGFzc3dvcmQ6\r\n"
    assert c3.send(b64(b"nope")).startswith(b"-ERR [AUTH]")


def test_auth_cancel_bad_base64_unknown_mechanism(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    assert c.send("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert c.send("*") == b"-ERR Authentication cancelled\r\n"
    assert c.send("AUTH PLAIN") == b"+ \r\n"
    assert c.send("not base64!").startswith(b"-ERR")
    assert c.send("AUTH CRAM-MD5").startswith(b"-ERR")
    assert c.send("AUTH PLAIN ***").startswith(b"-ERR")
    assert c.send("AUTH PLAIN =").startswith(b"-ERR")  # empty PLAIN message is invalid
    assert c.send("AUTH PLAIN *") == b"-ERR Authentication cancelled\r\n"
    assert c.proto.state == "AUTHORIZATION"
    assert not c.closed
    listing = c.lines("AUTH")
    assert listing == [b"+OK Mechanisms follow", b"PLAIN", b"LOGIN", b"."]


def test_authzid_other_user_refused(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    reply = c.send("AUTH PLAIN " + b64(f"bob@example.test\0{USER}\0{PASSWORD}".encode()))
    assert reply.startswith(b"-ERR [AUTH]")


def test_garbage_commands(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    for junk in (b"", b"\xff\xfe", b"HELO", b"STAT", b"RETR 1", b"\x00\x01", b"LIST"):
        assert c.send(junk).startswith(b"-ERR")
    assert not c.closed
    assert c.send(b"A" * 5000).startswith(b"-ERR")  # over the line limit
    assert c.send("NOOP").startswith(b"-ERR")  # TRANSACTION only
    for _ in range(3):
        c.send(b"BOGUS")
    assert c.closed  # too many bad commands


def test_pipelined_commands_answered_in_order(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    c.proto.dataReceived(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\nQUIT\r\n".encode())
    lines = c.read().split(b"\r\n")[:-1]
    assert [x.split(b" ")[0] for x in lines] == [b"+OK"] * 5
    assert lines[2] == b"+OK 0 0"
    assert c.closed


def test_idle_timeout(plain_factory: POP3Factory) -> None:
    c = Client(plain_factory)
    clock = plain_factory.context.reactor
    clock.advance(599)
    assert not c.closed
    c.send("USER x")
    clock.advance(599)
    assert not c.closed
    clock.advance(2)
    assert c.read() == b"-ERR Disconnected for inactivity\r\n"
    assert c.closed


def test_login_delay_and_expire_capabilities(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True, pop3={"login_delay": 60, "expire_days": 30})
    add_user(ctx, USER)
    factory = POP3Factory(ctx, "pop3")
    c = Client(factory)
    caps = capa(c)
    assert b"LOGIN-DELAY 60" in caps and b"EXPIRE 30" in caps
    assert c.login(USER).startswith(b"+OK")
    c.send("QUIT")
    second = Client(factory)
    assert second.login(USER).startswith(b"-ERR [LOGIN-DELAY]")
    ctx.reactor.advance(61)
    assert Client(factory).login(USER).startswith(b"+OK")


def test_quit_in_authorization(factory: POP3Factory) -> None:
    c = Client(factory)
    assert c.send("QUIT").startswith(b"+OK")
    assert c.closed


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (ErrorKind.IN_USE, b"[IN-USE]"),
        (ErrorKind.TEMPORARY, b"[SYS/TEMP]"),
        (ErrorKind.NONEXISTENT, b"[SYS/PERM]"),
    ],
)
def test_maildrop_errors_get_response_codes(
    plain_factory: POP3Factory, monkeypatch: pytest.MonkeyPatch, kind: ErrorKind, code: bytes
) -> None:
    def unavailable(store: object, address: str) -> None:
        raise MailError(kind, detail="/secret/path locked by pid 42")

    monkeypatch.setattr(maildrop, "load", unavailable)
    c = Client(plain_factory)
    reply = c.login(USER)
    assert reply.startswith(b"-ERR " + code)
    assert b"secret" not in reply and b"42" not in reply
    assert c.proto.state == "AUTHORIZATION" and not c.closed


def test_throttled_login_gets_sys_temp(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True, throttle_max_failures=2)
    add_user(ctx, USER)
    factory = POP3Factory(ctx, "pop3")
    for _ in range(2):
        Client(factory).login(USER, "wrong")
    reply = Client(factory).login(USER)  # right password, but this source is throttled
    assert reply.startswith(b"-ERR [SYS/TEMP]")


def test_non_ascii_password_and_garbage_auth_data(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER, "pässwörd ☃")
    factory = POP3Factory(ctx, "pop3")
    c = Client(factory)
    assert c.send("USER " + USER).startswith(b"+OK")
    assert c.send("PASS pässwörd ☃".encode()).startswith(b"+OK Logged in")
    c2 = Client(factory)
    assert c2.send(b"AUTH PLAIN \xff\xfe\xc3").startswith(b"-ERR")
    assert c2.send(b"AUTH PL\xc3\xa4IN").startswith(b"-ERR")
    assert c2.send(b"\xc3\xa4USER x").startswith(b"-ERR")
    assert c2.send(b"USER " + USER.encode()).startswith(b"+OK")
    assert c2.send(b"PASS p\xe4sswort").startswith(b"-ERR [AUTH]")  # Latin-1 bytes: no match
    assert not c2.closed
