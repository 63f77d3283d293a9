"""TRANSACTION and UPDATE states over StringTransport with the real Maildir store."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.testing import StringTransport

from mailsuite.pop3.server import POP3Factory
from tests.pop3.support import Client, add_user, deliver, make_context, message

pytest.importorskip("mailsuite.storage.store")

USER = "alice@example.test"
KiB = 1024


@pytest.fixture
def factory(tmp_path: Path) -> POP3Factory:
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER)
    for n in (1, 2, 3):
        deliver(ctx, USER, message(n))
    return POP3Factory(ctx, "pop3")


def session(factory: POP3Factory) -> Client:
    c = Client(factory)
    assert c.login(USER).startswith(b"+OK Logged in, 3 messages")
    return c


def inbox(factory: POP3Factory):  # type: ignore[no-untyped-def]
    box = factory.context.store.account(USER).open("INBOX")
    box.sync()
    return box


def test_stat_list_uidl(factory: POP3Factory) -> None:
    c = session(factory)
    sizes = [len(message(n)) for n in (1, 2, 3)]
    assert c.send("STAT") == b"+OK 3 %d\r\n" % sum(sizes)
    lines = c.lines("LIST")
    assert lines[1:] == [b"1 %d" % sizes[0], b"2 %d" % sizes[1], b"3 %d" % sizes[2], b"."]
    assert c.send("LIST 2") == b"+OK 2 %d\r\n" % sizes[1]
    box = inbox(factory)
    uidls = [box.pop3_uidl(m.uid).encode() for m in box.messages()]
    assert c.lines("UIDL")[1:] == [b"1 " + uidls[0], b"2 " + uidls[1], b"3 " + uidls[2], b"."]
    assert c.send("UIDL 3") == b"+OK 3 " + uidls[2] + b"\r\n"
    # the same message has the same UIDL in the next session
    c.send("QUIT")
    assert session(factory).send("UIDL 3") == b"+OK 3 " + uidls[2] + b"\r\n"


def test_retr_and_top_exact_bytes(factory: POP3Factory) -> None:
    c = session(factory)
    raw = message(2)
    reply = c.send("RETR 2")
    assert reply == b"+OK %d octets\r\n" % len(raw) + raw.replace(b"\n.", b"\n..") + b".\r\n"
    head = raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert c.send("TOP 2 0") == b"+OK %d octets\r\n" % len(raw) + head + b".\r\n"
    assert c.send("TOP 2 1").endswith(b"\r\n\r\nBody of message 2\r\n.\r\n")


@pytest.mark.parametrize(
    "command",
    [
        "DELE 0",
        "RETR 99999999999999999999",
        "TOP 1 -1",
        "TOP 1",
        "TOP 1 x",
        "TOP 0 1",
        "RETR",
        "RETR 1 2",
        "RETR -1",
        "RETR +1",
        "RETR 4",
        "LIST 0",
        "LIST a",
        "UIDL 4",
        "STAT 1",
        "DELE 1.0",
        "RETR \u0661",
        "NOOP x",
        "RSET now",
    ],
)
def test_bad_arguments_get_err_and_change_nothing(factory: POP3Factory, command: str) -> None:
    c = session(factory)
    reply = c.send(command.encode("utf-8"))
    assert reply.startswith(b"-ERR"), reply
    assert reply.count(b"\r\n") == 1
    assert c.send("STAT").startswith(b"+OK 3 ")
    c.send("QUIT")
    assert len(inbox(factory).messages()) == 3


def test_dele_rset_and_deleted_message_numbers(factory: POP3Factory) -> None:
    c = session(factory)
    assert c.send("DELE 1") == b"+OK Message 1 deleted\r\n"
    assert c.send("DELE 1").startswith(b"-ERR")
    assert c.send("RETR 1").startswith(b"-ERR")
    assert c.send("LIST 1").startswith(b"-ERR")
    assert c.send("STAT").startswith(b"+OK 2 ")
    assert [x.split()[0] for x in c.lines("LIST")[1:-1]] == [b"2", b"3"]
    assert c.send("RSET").startswith(b"+OK Maildrop has 3 messages")
    assert c.send("RETR 1").startswith(b"+OK")


def test_quit_applies_only_our_deletions(factory: POP3Factory) -> None:
    box = inbox(factory)
    uids = [m.uid for m in box.messages()]
    # another (IMAP) session flagged message 3 \Deleted without expunging
    box.store_flags([uids[2]], ["\\Deleted"], "add")
    c = session(factory)
    c.send("DELE 1")
    c.send("DELE 2")
    assert c.send("QUIT").startswith(b"+OK")
    assert c.closed
    box.sync()
    assert [m.uid for m in box.messages()] == [uids[2]]


def test_dropped_connection_keeps_every_marked_message(factory: POP3Factory) -> None:
    c = session(factory)
    for n in (1, 2, 3):
        c.send(f"DELE {n}")
    c.drop()
    assert len(inbox(factory).messages()) == 3
    assert session(factory).send("STAT").startswith(b"+OK 3 ")


def test_timeout_is_not_quit(factory: POP3Factory) -> None:
    c = session(factory)
    c.send("DELE 1")
    factory.context.reactor.advance(601)
    assert c.read() == b"-ERR Disconnected for inactivity\r\n"
    c.drop()
    assert len(inbox(factory).messages()) == 3


def test_message_expunged_elsewhere_is_err_never_another(factory: POP3Factory) -> None:
    c = session(factory)
    other = inbox(factory)
    uids = [m.uid for m in other.messages()]
    other.store_flags([uids[0]], ["\\Deleted"], "add")
    other.expunge([uids[0]])
    assert c.send("RETR 1") == b"-ERR Message 1 was removed by another session\r\n"
    assert c.send("TOP 1 0").startswith(b"-ERR")
    assert b"message 2" in c.send("RETR 2")
    c.send("DELE 1")
    c.send("DELE 2")
    assert c.send("QUIT").startswith(b"+OK")
    other.sync()
    assert [m.uid for m in other.messages()] == [uids[2]]


def test_flag_change_elsewhere_does_not_break_retr(factory: POP3Factory) -> None:
    c = session(factory)
    other = inbox(factory)
    uid = other.messages()[1].uid
    other.store_flags([uid], ["\\Flagged", "\\Seen"], "add")  # renames the file
    assert b"message 2" in c.send("RETR 2")


def test_retr_marks_seen_at_quit(factory: POP3Factory) -> None:
    c = session(factory)
    c.send("RETR 1")
    c.send("TOP 2 0")
    c.send("QUIT")
    flags = [m.flags for m in inbox(factory).messages()]
    assert "\\Seen" in flags[0] and "\\Seen" not in flags[1]


def test_expire_zero_deletes_retrieved_at_quit(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True, pop3={"expire_days": 0})
    add_user(ctx, USER)
    for n in (1, 2):
        deliver(ctx, USER, message(n))
    factory = POP3Factory(ctx, "pop3")
    c = Client(factory)
    c.login(USER)
    assert b"EXPIRE 0" in c.send("CAPA")
    c.send("RETR 2")
    c.send("QUIT")
    assert [
        b"message 1" in inbox(factory).open_message(m.uid).read()
        for m in inbox(factory).messages()
    ] == [True]


def test_dot_at_16k_chunk_boundaries_through_the_server(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER)
    first = b"Subject: dots\r\n\r\n" + b"X" * (16 * KiB - 19) + b"\r\n"
    dotted = b"." + b"y" * (16 * KiB - 3) + b"\r\n"
    raw = first + dotted * 8 + b".\r\n"  # ends with a line that is a lone dot
    assert len(first) == 16 * KiB
    deliver(ctx, USER, raw)
    factory = POP3Factory(ctx, "pop3")
    factory.chunk_size = 16 * KiB
    c = Client(factory)
    c.login(USER)
    reply = c.send("RETR 1")
    body = reply.split(b"\r\n", 1)[1]
    assert body == raw.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert body.count(b"\r\n.\r\n") == 1 and body.endswith(b"\r\n.\r\n")
    top = c.send("TOP 1 3").split(b"\r\n", 1)[1]
    assert top == first.replace(b"\r\n.", b"\r\n..") + (b"." + dotted) * 2 + b".\r\n"


def test_internal_errors_do_not_leak(factory: POP3Factory, tmp_path: Path) -> None:
    c = session(factory)
    box = inbox(factory)
    boom = RuntimeError(f"secret path {tmp_path}")

    def broken(*a: object) -> None:
        raise boom

    c.proto.drop.mailbox.open_message = broken  # type: ignore[method-assign]
    reply = c.send("RETR 1")
    assert reply == b"-ERR [SYS/TEMP] Internal server error\r\n"
    assert c.closed
    c.drop()
    assert len(box.messages()) == 3


class StalledTransport(StringTransport):
    """A client that stopped reading: the producer is paused and never resumed."""

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and len(self.io.getvalue()) > 64 * KiB:
            self.producer.pauseProducing()


def test_stalled_reader_times_out_and_file_is_closed(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER)
    deliver(ctx, USER, message(1, (b"y" * 78 + b"\r\n") * 20000))
    factory = POP3Factory(ctx, "pop3")
    factory.chunk_size = 16 * KiB
    transport = StalledTransport()
    c = Client(factory, transport=transport)
    c.login(USER)
    c.send("DELE 1")
    c.proto.dataReceived(b"RSET\r\nRETR 1\r\nNOOP\r\n")
    sender = c.proto.sender
    assert sender is not None and transport.producer is sender
    sent = len(c.read())
    assert 64 * KiB < sent < 200 * KiB  # waiting for the client, not reading on
    factory.context.reactor.advance(601)
    assert transport.disconnected  # aborted: nothing more can be written to it
    assert sender.source.closed and transport.producer is None
    assert b"Disconnected" not in c.read()  # never inside a message body
    c.drop()
    assert len(inbox(factory).messages()) == 1


def test_lf_only_file_from_a_foreign_writer_goes_out_as_crlf(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, allow_plaintext=True)
    add_user(ctx, USER)
    deliver(ctx, USER, message(1))
    lf = b"Subject: lf\n\n" + b"x" * 100 + b"\n.dot\n" + (b"y" * 70 + b"\n") * 2000 + b"end\n"
    new = tmp_path / "mail" / "example.test" / "alice" / "new"  # INBOX (Dovecot LDA style)
    assert new.is_dir()
    (new / "1700000000.M1P1.foreign").write_bytes(lf)
    factory = POP3Factory(ctx, "pop3")
    factory.chunk_size = 16 * KiB
    c = Client(factory)
    assert c.login(USER).startswith(b"+OK Logged in, 2 messages")
    crlf = lf.replace(b"\n", b"\r\n")
    assert c.send("LIST 2") == b"+OK 2 %d\r\n" % len(crlf)
    body = c.send("RETR 2").split(b"\r\n", 1)[1]
    assert body == crlf.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert b"\r\r" not in body
