"""The SMTP state machine over StringTransport: commands, states, limits."""

from __future__ import annotations

import pytest

from tests.smtp.conftest import Env


def test_greeting_and_ehlo_keywords_mx(env: Env) -> None:
    c = env.client("smtp", greet=False)
    reply = c.cmd("EHLO client.example")
    lines = reply.split("|")
    assert lines[0] == "250-mail.example.test"
    words = {line[4:] for line in lines[1:]}
    assert {
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    } <= words
    assert "SIZE 52428800" in words
    assert "STARTTLS" in words
    assert not any(w.startswith("AUTH") for w in words)


def test_submission_offers_auth_only_after_starttls(env: Env) -> None:
    c = env.client("submission", greet=False)
    plain = c.cmd("EHLO client.example")
    assert "AUTH" not in plain and "STARTTLS" in plain
    assert c.cmd("AUTH PLAIN AGFsaWNlAHg=").startswith("538 5.7.11")
    assert c.cmd("MAIL FROM:<alice@example.test>").startswith("530 5.7.0")
    c.start_tls()
    secure = c.cmd("EHLO client.example")
    assert "AUTH PLAIN LOGIN" in secure and "STARTTLS" not in secure


def test_allow_plaintext_offers_auth_without_tls(env: Env) -> None:
    env.allow_plaintext()
    c = env.client("submission", greet=False)
    assert "AUTH PLAIN LOGIN" in c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<alice@example.test>").startswith("530 5.7.0 Authentication")


def test_helo_has_no_extensions_and_refuses_parameters(env: Env) -> None:
    c = env.client("smtp", greet=False)
    assert c.cmd("HELO client.example") == "250 mail.example.test"
    assert c.cmd("MAIL FROM:<x@remote.example> SIZE=10").startswith("555 5.5.4")


def test_commands_before_hello_and_out_of_sequence(env: Env) -> None:
    c = env.client("smtp", greet=False)
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("503 5.5.1")
    assert c.cmd("RCPT TO:<alice@example.test>").startswith("503 5.5.1")
    assert c.cmd("DATA").startswith("503 5.5.1")
    c.ehlo()
    assert c.cmd("RCPT TO:<alice@example.test>").startswith("503 5.5.1 Need MAIL")
    assert c.cmd("DATA").startswith("503 5.5.1")
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("250 2.1.0")
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("503 5.5.1")
    assert c.cmd("DATA").startswith("554 5.5.1 No valid recipients")


def test_simple_commands(env: Env) -> None:
    c = env.client()
    assert c.cmd("NOOP").startswith("250 2.0.0")
    assert c.cmd("VRFY alice@example.test").startswith("252 2.5.0")
    assert c.cmd("EXPN team@example.test").startswith("502 5.5.1")
    assert c.cmd("HELP").startswith("214 2.0.0")
    assert c.cmd("RSET").startswith("250 2.0.0")
    assert c.cmd("RSET now").startswith("501 5.5.4")
    assert c.cmd("FOO").startswith("500 5.5.2")
    assert c.cmd("QUIT").startswith("221 2.0.0")
    assert c.closed


def test_bare_cr_or_lf_in_command_refused(env: Env) -> None:
    c = env.client()
    c.send("NOOP\nMAIL FROM:<x@remote.example>\r\n")
    assert c.codes() == ["500 5.5.2"]
    c.send("NOOP\rRSET\r\n")
    assert c.codes() == ["500 5.5.2"]
    c.send("NOOP\0\r\n")
    assert c.codes() == ["501 5.5.4"]
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("250")


def test_long_command_line_cannot_inject(env: Env) -> None:
    """A line over the limit is refused once and discarded up to its CRLF:
    a command hidden after the limit is never executed."""
    c = env.client()
    c.send("NOOP " + "A" * 3000 + "MAIL FROM:<evil@remote.example>\r\n")
    assert c.codes() == ["500 5.5.6"]
    assert c.cmd("RCPT TO:<alice@example.test>").startswith("503")


def test_starttls_discards_pipelined_plaintext_and_resets(env: Env) -> None:
    """RFC 3207 §4.2: commands sent with STARTTLS are not executed inside TLS."""
    c = env.client("smtp")
    c.send("STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    assert c.codes() == ["220 2.0.0"]
    assert c.transport.tls_started
    assert c.proto.state.value == "init"
    assert c.cmd("MAIL FROM:<x@remote.example>").startswith("503 5.5.1 Send EHLO")
    assert "STARTTLS" not in c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS").startswith("503 5.5.1")


def test_starttls_forgets_authentication(env: Env) -> None:
    env.allow_plaintext()
    c = env.client("submission")
    c.login()
    assert c.proto.user is not None
    c.start_tls()
    assert c.proto.user is None


def test_starttls_not_in_transaction_nor_with_arguments(env: Env) -> None:
    c = env.client()
    assert c.cmd("STARTTLS now").startswith("501 5.5.4")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd("STARTTLS").startswith("503 5.5.1")


def test_too_many_errors_closes(env: Env) -> None:
    env.configure(max_errors=3)
    c = env.client()
    c.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n")
    assert c.codes() == ["500 5.5.2", "500 5.5.2", "500 5.5.2", "421 4.7.0"]
    assert c.closed


def test_command_timeout(env: Env) -> None:
    c = env.client()
    env.clock.advance(299)
    assert not c.closed
    env.clock.advance(2)
    assert c.codes() == ["421 4.4.2"]
    assert c.closed


def test_input_restarts_idle_timer_and_data_timeout_applies(env: Env) -> None:
    c = env.client()
    env.clock.advance(200)
    c.send("NOOP\r\n")  # restarts the 300 s command timer
    env.clock.advance(299)
    assert c.codes() == ["250 2.0.0"] and not c.closed
    c.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    c.codes()
    env.clock.advance(599)  # DATA timeout is 600 s: longer than the command timer
    assert not c.closed
    c.send("x\r\n.\r\n")  # back to the command timeout after the message
    assert c.codes() == ["250 2.0.0"]
    env.clock.advance(299)
    assert not c.closed
    env.clock.advance(2)
    assert c.codes() == ["421 4.4.2"] and c.closed
    assert len(env.clock.getDelayedCalls()) == 0


def test_data_timeout_aborts_message(env: Env) -> None:
    c = env.client()
    c.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "354"]
    c.send("Subject: x\r\n\r\n" + ("y" * 98 + "\r\n") * 1000)
    assert env.agent.begun  # the first 64 KiB batch was written
    env.clock.advance(601)
    assert c.codes() == ["421 4.4.2"]
    assert c.closed
    assert env.agent.aborted and not env.agent.committed


def test_connection_limit_refusal(env: Env) -> None:
    from twisted.internet.address import IPv4Address
    from twisted.internet.testing import StringTransport

    from mailsuite.protocol.lines import ConnectionLimiter
    from mailsuite.smtp.server import make_factory

    env.context.limiter = ConnectionLimiter(1, 1)
    factory = make_factory(env.context, "smtp", False)
    first = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 1))
    first.makeConnection(StringTransport())
    second = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 2))
    transport = StringTransport()
    second.makeConnection(transport)
    assert transport.value() == b"421 4.7.0 mail.example.test Too many connections\r\n"
    assert transport.disconnecting


def test_unexpected_exception_is_421_without_details(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailsuite.smtp import commands

    def boom(session: object, args: str) -> None:
        raise RuntimeError("/var/secret/path")

    monkeypatch.setitem(commands.COMMANDS, "NOOP", commands.Command(boom, commands.ANY))
    c = env.client()
    c.send("MAIL FROM:<x@remote.example>\r\nNOOP\r\n")
    replies = c.replies()
    assert replies == [
        "250 2.1.0 Sender ok",
        "421 4.3.0 mail.example.test Internal error, closing connection",
    ]
    assert c.closed


def test_reply_codes_are_enhanced_except_greeting_and_ehlo(env: Env) -> None:
    c = env.client(greet=False)
    c.send("EHLO a\r\nHELO a\r\nMAIL FROM:<x@remote.example>\r\nRCPT TO:<bob@example.test>\r\n")
    c.send("VRFY x\r\nFOO\r\nDATA\r\n")
    import re

    replies = c.replies()
    assert replies[-1] == "354 End data with <CR><LF>.<CR><LF>"
    for reply in replies[2:-1]:
        assert re.match(r"\d{3} [245]\.\d+\.\d+ ", reply), reply
