"""DATA and BDAT over StringTransport: framing, smuggling, limits, commit."""

from __future__ import annotations

import pytest

from mailsuite.errors import ErrorKind, MailError
from tests.smtp.conftest import Client, Env

ENVELOPE = "MAIL FROM:<sender@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"


def start_data(env: Env, role: str = "smtp") -> Client:
    c = env.client(role)
    c.send(ENVELOPE)
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "354"]
    return c


def test_message_stored_with_trace_fields_and_unstuffed(env: Env) -> None:
    c = env.client()
    c.send(ENVELOPE)
    c.send("Subject: hi\r\nReturn-Path: <forged@x>\r\n  folded\r\n\r\n..dot\r\nline\r\n.\r\n")
    replies = c.replies()
    assert replies[-1].startswith("250 2.0.0 Ok: message accepted for 1 recipient")
    (delivery,) = env.agent.committed
    data = delivery.data
    assert data.startswith(
        b"Return-Path: <sender@remote.example>\r\nReceived: from client.example"
    )
    assert b"\tby mail.example.test (mailsuite) with ESMTP id " in data
    assert b"\tfor <alice@example.test>; " in data
    assert data.endswith(b"Subject: hi\r\n\r\n.dot\r\nline\r\n")
    assert b"forged" not in data and b"folded" not in data
    assert delivery.envelope.mail_from == "sender@remote.example"
    assert delivery.envelope.recipients == ["alice@example.test"]
    assert env.agent.stored[0][0] == "alice@example.test"


def test_each_stored_message_is_logged_once(env: Env) -> None:
    from twisted.logger import formatEvent, globalLogPublisher

    events: list[dict[str, object]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        c = env.client()
        c.send(ENVELOPE + "Subject: {braces}\r\n\r\nx\r\n.\r\n")
        assert c.codes()[-1] == "250 2.0.0"
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [formatEvent(e) for e in events]
    stored = [line for line in lines if "stored for" in line]
    assert len(stored) == 1, lines
    assert stored[0].endswith("from <sender@remote.example> stored for 1 of 1 recipients")
    assert stored[0].startswith(c.proto.conn_id + " message ")


def test_empty_message_and_next_transaction(env: Env) -> None:
    c = env.client()
    c.send(ENVELOPE + ".\r\n" + ENVELOPE + "x\r\n.\r\nQUIT\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0"] * 2 + ["221 2.0.0"]
    assert len(env.agent.committed) == 2


SMUGGLING = [
    b"\n.\n",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r.\r",
    b"\r\n\x00.\r\n",
]


@pytest.mark.parametrize("shape", SMUGGLING, ids=repr)
def test_smuggling_shapes_never_end_data(env: Env, shape: bytes) -> None:
    """Each shape followed by a forged transaction: the forged commands stay
    content, the message is refused after the real end, nothing is stored."""
    c = env.client()
    c.send(ENVELOPE)
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "354"]
    forged = b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nforged\r\n"
    c.send(b"Subject: a\r\n\r\nbody" + shape + forged)
    assert c.replies() == []
    c.send(b".\r\n")
    assert c.codes() == ["550 5.6.11"]
    assert not env.agent.committed
    assert c.cmd("RCPT TO:<bob@example.test>").startswith("503")


@pytest.mark.parametrize("shape", [b"\r\n", b"ab\rc\r\n", b"ab\nc\r\n", b"a\x00b\r\n"], ids=repr)
def test_bare_cr_lf_nul_anywhere_refused(env: Env, shape: bytes) -> None:
    c = start_data(env)
    c.send(b"Subject: a\r\n\r\n" + shape + b".\r\n")
    codes = c.codes()
    if shape == b"\r\n":
        assert codes == ["250 2.0.0"]
    else:
        assert codes == ["550 5.6.11"]


def test_terminator_split_across_reads(env: Env) -> None:
    c = start_data(env)
    for piece in [b"Subject: a\r\n\r\nbody\r", b"\n", b".", b"\r", b"\nNOOP\r\n"]:
        c.send(piece)
    assert c.codes() == ["250 2.0.0", "250 2.0.0"]
    assert env.agent.committed[0].data.endswith(b"\r\n\r\nbody\r\n")


def test_long_line_in_data_fails_message_and_closes(env: Env) -> None:
    """DESIGN.md §2: Twisted fell back to command mode here; we close."""
    c = start_data(env)
    c.send(b"Subject: a\r\n\r\n" + b"x" * 5000 + b"\r\nMAIL FROM:<evil@remote.example>\r\n")
    assert c.codes() == ["554 5.6.0"]
    assert c.closed
    c.send(b".\r\nMAIL FROM:<evil@remote.example>\r\n")
    assert c.replies() == []
    assert not env.agent.committed


def test_size_declared_too_big(env: Env) -> None:
    env.configure(max_message_size=1000)
    c = env.client()
    assert "SIZE 1000" in c.cmd("EHLO x")
    assert c.cmd("MAIL FROM:<a@remote.example> SIZE=1001").startswith("552 5.3.4")
    assert c.cmd("MAIL FROM:<a@remote.example> SIZE=1000").startswith("250")


def test_size_enforced_while_receiving(env: Env) -> None:
    env.configure(max_message_size=1000)
    c = env.client()
    c.send(ENVELOPE)
    c.replies()
    c.send(("x" * 98 + "\r\n") * 11 + ".\r\nNOOP\r\n")
    assert c.codes() == ["552 5.3.4", "250 2.0.0"]
    assert not env.agent.committed


def test_large_message_streams_in_batches(env: Env) -> None:
    c = start_data(env)
    line = b"y" * 998 + b"\r\n"
    for _ in range(300):
        c.send(line)
    c.send(b".\r\n")
    assert c.codes() == ["250 2.0.0"]
    (delivery,) = env.agent.committed
    sizes = [len(w) for w in delivery.writes]
    assert len(sizes) >= 4  # trace fields + several 64 KiB batches + rest
    assert max(sizes) < 128 * 1024
    assert delivery.data.count(line) == 300


def test_pipelined_async_recipient_checks_answered_in_order(env: Env) -> None:
    env.runner.auto = False
    c = env.client()
    c.send(
        "MAIL FROM:<s@remote.example>\r\n"
        "RCPT TO:<alice@example.test>\r\n"
        "RCPT TO:<nobody@example.test>\r\n"
        "RCPT TO:<team@example.test>\r\n"
        "RCPT TO:<x@remote.example>\r\n"
        "DATA\r\n"
    )
    # Replies of the group are held while a lookup runs with more commands
    # buffered, then sent as one unit (RFC 2920 §3.2).
    assert c.codes() == []
    # One lookup at a time: later commands wait for the pending one.
    assert len(env.runner.pending) == 1
    env.runner.flush()
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "554 5.7.1", "354"]
    c.send("Subject: p\r\n\r\nhello\r\n.\r\nNOOP\r\n")
    assert c.replies() == []  # commit pending: NOOP waits
    env.runner.flush()
    assert c.codes() == ["250 2.0.0", "250 2.0.0"]
    (delivery,) = env.agent.committed
    assert delivery.envelope.recipients == ["alice@example.test", "team@example.test"]


def test_grouped_replies_written_once_input_runs_dry(env: Env) -> None:
    env.runner.auto = False
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    # Nothing else is buffered: the server must not sit on the MAIL reply
    # while the recipient lookup runs.
    assert c.codes() == ["250 2.1.0"]
    env.runner.flush()
    assert c.codes() == ["250 2.1.5"]
    writes: list[bytes] = []
    write = c.transport.write

    def counting_write(data: bytes) -> None:
        writes.append(data)
        write(data)

    c.transport.write = counting_write  # type: ignore[method-assign]
    c.send("RCPT TO:<bob@example.test>\r\nRCPT TO:<team@example.test>\r\nDATA\r\n")
    assert c.codes() == []
    env.runner.flush()
    assert c.codes() == ["250 2.1.5", "250 2.1.5", "354"]
    assert len(writes) == 1  # one unit


def test_commit_happens_before_250(env: Env) -> None:
    env.runner.auto = False
    c = env.client()
    c.send(ENVELOPE)
    env.runner.flush()
    c.replies()
    c.send("x\r\n.\r\n")
    assert c.replies() == [] and not env.agent.committed
    env.runner.flush()
    assert env.agent.committed and c.codes() == ["250 2.0.0"]


def test_partial_failure_reports_count(env: Env) -> None:
    env.agent.failures["bob@example.test"] = MailError(ErrorKind.OVER_QUOTA)
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send("RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n")
    assert c.replies()[-1] == "250 2.0.0 Ok: message accepted for 1 of 2 recipients"


def test_all_over_quota_is_temporary(env: Env) -> None:
    env.agent.failures["alice@example.test"] = MailError(ErrorKind.OVER_QUOTA)
    c = start_data(env)
    c.send(b"x\r\n.\r\n")
    assert c.replies() == ["452 4.2.2 Mailbox full, try again later"]


def test_internal_error_in_storage_is_not_shown(env: Env) -> None:
    env.agent.begin_error = RuntimeError("/secret/path exploded")
    c = start_data(env)
    c.send(b"x\r\n.\r\nNOOP\r\n")
    replies = c.replies()
    assert replies == ["451 4.3.0 Temporary failure, try again later", "250 2.0.0 Ok"]
    assert "secret" not in "".join(replies)


def test_connection_lost_during_data_aborts(env: Env) -> None:
    c = start_data(env)
    c.send(b"Subject: a\r\n\r\n" + (b"z" * 500 + b"\r\n") * 200)
    c.proto.connectionLost(None)
    assert env.agent.aborted and not env.agent.committed


# -- BDAT (RFC 3030) -----------------------------------------------------------
def test_bdat_chunks(env: Env) -> None:
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send(b"BDAT 14\r\nSubject: b\r\n\r\nBDAT 7 LAST\r\n.body\r\nNOOP\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0", "250 2.0.0"]
    (delivery,) = env.agent.committed
    assert delivery.data.endswith(b"Subject: b\r\n\r\n.body\r\n")


def test_bdat_zero_last_and_no_trailing_crlf(env: Env) -> None:
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send(b"BDAT 4\r\nab\r\nBDAT 2\r\ncdBDAT 0 LAST\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0", "250 2.0.0"]
    assert env.agent.committed[0].data.endswith(b"\r\nab\r\ncd\r\n")


def test_bdat_refused_chunk_is_consumed(env: Env) -> None:
    c = env.client()
    c.send(b"BDAT 22\r\nMAIL FROM:<e@x.test>\r\nNOOP\r\n")
    assert c.codes() == ["503 5.5.1", "250 2.0.0"]
    c.send("MAIL FROM:<s@remote.example>\r\n")
    c.send(b"BDAT 12 LAST\r\nRCPT TO:<>\r\n")
    assert c.codes() == ["250 2.1.0", "554 5.5.1"]


def test_bdat_after_data_refused_and_bad_syntax_closes(env: Env) -> None:
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send(b"BDAT 3\r\nabcDATA\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "250 2.0.0", "503 5.5.1"]
    c.send(b"BDAT x\r\nMAIL FROM:<evil@x.test>\r\n")
    assert c.codes() == ["501 5.5.4"]
    assert c.closed


def test_bdat_too_big_fails_transaction(env: Env) -> None:
    env.configure(max_message_size=100)
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send(b"BDAT 200\r\n" + (b"x" * 18 + b"\r\n") * 10 + b"BDAT 2 LAST\r\nab")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "552 5.3.4", "554 5.5.0"]
    assert c.cmd("RSET").startswith("250")
    assert not env.agent.committed


def test_bdat_bare_lf_refused(env: Env) -> None:
    c = env.client()
    c.send("MAIL FROM:<s@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
    c.send(b"BDAT 9 LAST\r\nab\ncd\r\n\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "550 5.6.11"]


def test_rfc_text_lines_accepted_even_with_small_command_limit(env: Env) -> None:
    env.configure(max_line_length=512)
    c = start_data(env)
    c.send(b"Subject: a\r\n\r\n" + b"x" * 998 + b"\r\n.\r\n")
    assert c.codes() == ["250 2.0.0"]
    c.send(ENVELOPE.encode() + b"Subject: a\r\n\r\n" + b"x" * 999 + b"\r\n")
    assert c.codes() == ["250 2.1.0", "250 2.1.5", "354", "554 5.6.0"]
