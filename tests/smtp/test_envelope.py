"""MAIL/RCPT policy per role, DSN parameters, the queue path, AUTH."""

from __future__ import annotations

import base64

import pytest

from mailsuite.errors import ErrorKind, MailError
from tests.smtp.conftest import PASSWORD, Client, Env


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- MX role: never relays ---------------------------------------------------------
@pytest.mark.parametrize(
    "rcpt, code",
    [
        ("<someone@remote.example>", "554 5.7.1"),
        ("<alice%remote.example@example.test>", "554 5.7.1"),
        ("<remote.example!alice@example.test>", "554 5.7.1"),
        ("<@example.test:someone@remote.example>", "554 5.7.1"),
        ('<"someone@remote.example"@example.test>', "553 5.1.3"),
        ("<alice@example.test.>", "501 5.1.3"),
        ("<alice@[127.0.0.1]>", "554 5.7.1"),
        ("<alice@remote.example@example.test>", "501 5.1.3"),
        ("alice@example.test", "501 5.1.3"),
        ("<>", "501 5.1.3"),
        ("<nobody@example.test>", "550 5.1.1"),
        ("<fwd@example.test>", "451 4.4.0"),  # forwarding alias needs the queue
    ],
)
def test_mx_recipient_refusals(env: Env, rcpt: str, code: str) -> None:
    c = env.client("smtp")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd(f"RCPT TO:{rcpt}").startswith(code)


@pytest.mark.parametrize(
    "rcpt",
    [
        "<alice@example.test>",
        "<ALICE@Example.TEST>",
        '<"alice"@example.test>',
        "<@relay.example,@other.example:alice@example.test>",
        "<Postmaster>",
        "<team@example.test>",
        "<alice+tag@example.test>",
    ],
)
def test_mx_accepts_local(env: Env, rcpt: str) -> None:
    if rcpt == "<Postmaster>":
        env.directory.add_domain("mail.example.test")
        env.directory.add_alias("postmaster@mail.example.test", ["alice@example.test"])
    c = env.client("smtp")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd(f"RCPT TO:{rcpt}").startswith("250 2.1.5")


def test_mx_has_no_auth(env: Env) -> None:
    c = env.client("smtp")
    assert c.cmd("AUTH PLAIN " + b64(f"\0alice@example.test\0{PASSWORD}")).startswith("503 5.5.1")


def test_mx_forwarding_alias_goes_to_queue(env: Env) -> None:
    env.use_queue()
    c = env.client("smtp")
    c.send("MAIL FROM:<x@remote.example>\r\nRCPT TO:<fwd@example.test> NOTIFY=FAILURE\r\n")
    c.send("RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: f\r\n\r\nx\r\n.\r\n")
    assert c.replies()[-1].startswith(
        "250 2.0.0 Ok: message accepted for 2 recipients, queued as Q1"
    )
    (queued,) = env.queue.committed
    assert queued.recipients == ["someone@remote.example"]
    assert queued.envelope.rcpt_params == {"someone@remote.example": {"NOTIFY": "FAILURE"}}
    assert queued.data.startswith(b"Received: ")  # no Return-Path on a relayed copy
    (local,) = env.agent.committed
    assert local.data.startswith(b"Return-Path: <x@remote.example>\r\nReceived: ")
    assert local.envelope.recipients == ["alice@example.test"]


# -- MAIL and RCPT parameters -------------------------------------------------------
def test_dsn_and_body_parameters_stored(env: Env) -> None:
    c = env.client("smtp")
    assert c.cmd(
        "MAIL FROM:<x@remote.example> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME SIZE=100 AUTH=<>"
    ).startswith("250")
    assert c.cmd(
        "RCPT TO:<alice@example.test> NOTIFY=success,delay ORCPT=rfc822;alice+40example.test"
    ).startswith("250")
    c.send("DATA\r\nx\r\n.\r\n")
    assert c.replies()[-1].startswith("250 2.0.0")
    env_ = env.agent.committed[0].envelope
    assert env_.params == {"RET": "HDRS", "ENVID": "abc+2Bdef", "BODY": "8BITMIME"}
    assert env_.rcpt_params == {
        "alice@example.test": {"NOTIFY": "SUCCESS,DELAY", "ORCPT": "rfc822;alice+40example.test"}
    }


@pytest.mark.parametrize(
    "params, code",
    [
        ("FOO=bar", "555 5.5.4"),
        ("BODY=BINARYMIME", "501 5.5.4"),
        ("SIZE=abc", "501 5.5.4"),
        ("SIZE=1 SIZE=1", "501 5.5.4"),
        ("RET=ALL", "501 5.5.4"),
        ("ENVID=" + "a" * 101, "501 5.5.4"),
        ("ENVID=a+zz", "501 5.5.4"),
        ("SMTPUTF8=yes", "501 5.5.4"),
        ("=x", "501 5.5.4"),
    ],
)
def test_bad_mail_parameters(env: Env, params: str, code: str) -> None:
    c = env.client("smtp")
    assert c.cmd(f"MAIL FROM:<x@remote.example> {params}").startswith(code)


@pytest.mark.parametrize(
    "params, code",
    [
        ("NOTIFY=NEVER,SUCCESS", "501 5.5.4"),
        ("NOTIFY=SOMETIMES", "501 5.5.4"),
        ("ORCPT=alice@example.test", "501 5.5.4"),
        ("XFOO", "555 5.5.4"),
    ],
)
def test_bad_rcpt_parameters(env: Env, params: str, code: str) -> None:
    c = env.client("smtp")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd(f"RCPT TO:<alice@example.test> {params}").startswith(code)


def test_smtputf8_required_for_non_ascii(env: Env) -> None:
    env.directory.add_user("jörg@example.test", "x")
    c = env.client("smtp")
    assert c.cmd("MAIL FROM:<jörg@remote.example>").startswith("553 5.6.7")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd("RCPT TO:<jörg@example.test>").startswith("553 5.6.7")
    c.cmd("RSET")
    c.cmd("MAIL FROM:<jörg@remote.example> SMTPUTF8")
    assert c.cmd("RCPT TO:<jörg@example.test>").startswith("250")
    c.send("DATA\r\nSubject: ü\r\n\r\nx\r\n.\r\n")
    assert c.replies()[-1].startswith("250")
    data = env.agent.committed[0].data
    assert b"with UTF8SMTP" in data and "for <jörg@example.test>".encode() in data


def test_recipient_limit_and_duplicates(env: Env) -> None:
    env.configure(max_recipients=2)
    c = env.client("smtp")
    c.cmd("MAIL FROM:<x@remote.example>")
    assert c.cmd("RCPT TO:<alice@example.test>").startswith("250")
    assert c.cmd("RCPT TO:<alice@example.test>").startswith("250")  # accepted once
    assert c.cmd("RCPT TO:<bob@example.test>").startswith("250")
    assert c.cmd("RCPT TO:<team@example.test>").startswith("452 4.5.3")


def test_directory_failure_is_temporary(env: Env) -> None:
    def broken(address: str) -> object:
        raise MailError(ErrorKind.TEMPORARY, detail="database locked")

    env.directory.resolve = broken  # type: ignore[method-assign]
    env.directory.resolve_local = broken  # type: ignore[method-assign]
    c = env.client("smtp")
    c.cmd("MAIL FROM:<x@remote.example>")
    reply = c.cmd("RCPT TO:<alice@example.test>")
    assert reply.startswith("451 4.3.0") and "locked" not in reply


# -- submission -----------------------------------------------------------------
def submission(env: Env) -> Client:
    c = env.client("submission")
    c.start_tls()
    c.ehlo()
    return c


def test_submission_requires_auth_before_mail(env: Env) -> None:
    c = submission(env)
    assert c.cmd("MAIL FROM:<alice@example.test>").startswith("530 5.7.0 Authentication")


def test_auth_plain_initial_response(env: Env) -> None:
    c = submission(env)
    assert c.cmd("AUTH PLAIN " + b64(f"\0alice@example.test\0{PASSWORD}")).startswith("235 2.7.0")
    assert "AUTH" not in c.cmd("EHLO again")
    assert c.cmd("AUTH PLAIN " + b64("\0a\0b")).startswith("503 5.5.1")


def test_auth_plain_with_challenge_and_login(env: Env) -> None:
    c = submission(env)
    assert c.cmd("AUTH PLAIN") == "334 "
    assert c.cmd(b64(f"\0alice@example.test\0{PASSWORD}")).startswith("235")
    c2 = submission(env)
    assert c2.cmd("AUTH LOGIN") == "334 " + b64("Username:")
    assert c2.cmd(b64("bob@example.test")) == "334 " + b64("Password:")
    assert c2.cmd(b64(PASSWORD)).startswith("235")
    c3 = submission(env)
    assert c3.cmd("AUTH LOGIN " + b64("bob@example.test")) == "334 " + b64("Password:")


def test_auth_failures(env: Env) -> None:
    c = submission(env)
    c.send("AUTH PLAIN " + b64("\0alice@example.test\0wrong") + "\r\n")
    env.clock.advance(60)  # the throttle delays failures
    assert c.codes() == ["535 5.7.8"]
    assert c.cmd("AUTH PLAIN") == "334 "
    assert c.cmd("*").startswith("501 5.0.0")
    assert c.cmd("AUTH LOGIN").startswith("334")
    assert c.cmd("not base64!").startswith("501 5.5.2")
    assert c.cmd("AUTH CRAM-MD5").startswith("504 5.5.4")
    assert c.cmd("AUTH PLAIN " + b64("admin\0alice@example.test\0" + PASSWORD)).startswith("535")


def test_auth_not_during_transaction(env: Env) -> None:
    env.configure(sender_policy="any")
    c = submission(env)
    c.login()
    c.cmd("MAIL FROM:<alice@example.test>")
    assert c.cmd("AUTH PLAIN").startswith("503 5.5.1")


def test_sender_policy_own(env: Env) -> None:
    c = submission(env)
    c.login()
    assert c.cmd("MAIL FROM:<bob@example.test>").startswith("553 5.7.1")
    assert c.cmd("MAIL FROM:<>").startswith("553 5.7.1")
    assert c.cmd("MAIL FROM:<Sales@EXAMPLE.test>").startswith("250")
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<alice+lists@example.test>").startswith("250")
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<bob+alice@example.test>").startswith("553 5.7.1")
    c.cmd("RSET")
    assert c.cmd("MAIL FROM:<alice@example.test>").startswith("250")


def test_sender_policy_any(env: Env) -> None:
    env.configure(sender_policy="any")
    c = submission(env)
    c.login()
    assert c.cmd("MAIL FROM:<bob@example.test>").startswith("250")


def test_submission_remote_recipient_needs_queue(env: Env) -> None:
    c = submission(env)
    c.login()
    c.cmd("MAIL FROM:<alice@example.test>")
    assert c.cmd("RCPT TO:<someone@remote.example>").startswith("451 4.4.0")
    assert c.cmd("RCPT TO:<someone@[192.0.2.1]>").startswith("451 4.4.0")
    assert c.cmd("RCPT TO:<bob@example.test>").startswith("250")


def test_submission_streams_to_queue_and_local(env: Env) -> None:
    env.use_queue()
    c = submission(env)
    c.login()
    c.send(
        "MAIL FROM:<alice@example.test> RET=FULL\r\nRCPT TO:<someone@remote.example>\r\n"
        "RCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    c.send("Subject: out\r\n\r\n" + ("z" * 998 + "\r\n") * 100 + ".\r\n")
    replies = c.replies()
    assert replies[-1] == "250 2.0.0 Ok: message accepted for 2 recipients, queued as Q1"
    (queued,) = env.queue.committed
    (local,) = env.agent.committed
    assert queued.envelope.params == {"RET": "FULL"}
    assert queued.envelope.mail_from == "alice@example.test"
    assert queued.data.split(b"\r\n\r\n", 1)[1] == local.data.split(b"\r\n\r\n", 1)[1]
    assert b"(authenticated sender: alice@example.test)" in queued.data
    assert b"with ESMTPSA" in queued.data and b"TLSv1.3" in queued.data


def test_queue_commit_failure_after_local_is_temporary(env: Env) -> None:
    env.use_queue()
    env.queue.commit_error = MailError(ErrorKind.TEMPORARY, detail="disk full")
    c = submission(env)
    c.login()
    c.send(
        "MAIL FROM:<alice@example.test>\r\nRCPT TO:<someone@remote.example>\r\n"
        "RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n"
    )
    assert c.replies()[-1].startswith("451 4.3.0")


def test_local_all_failed_aborts_queue_copy(env: Env) -> None:
    env.use_queue()
    env.agent.failures["bob@example.test"] = MailError(ErrorKind.TEMPORARY)
    c = submission(env)
    c.login()
    c.send(
        "MAIL FROM:<alice@example.test>\r\nRCPT TO:<someone@remote.example>\r\n"
        "RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n"
    )
    assert c.replies()[-1].startswith("451 4.3.0")
    assert not env.queue.committed
