"""DSN construction (RFC 3464) and the RFC 3461 parameters."""

from __future__ import annotations

import email
import email.policy

from mailsuite.delivery import dsn

MESSAGE = b"From: alice@example.test\r\nSubject: report\r\n\r\nline 1\r\n.line 2\r\n"


def _parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_xtext_round_trip() -> None:
    assert dsn.xtext_encode("a+b=c d\u00e9") == "a+2Bb+3Dc+20d+C3+A9"
    assert dsn.xtext_decode("rfc822;bob+2Btag@remote.test") == "rfc822;bob+tag@remote.test"


def test_notify_rules() -> None:
    assert dsn.wants_notice({}, "FAILURE") and dsn.wants_notice({}, "DELAY")
    assert not dsn.wants_notice({}, "SUCCESS")
    assert not dsn.wants_notice({"NOTIFY": "NEVER"}, "FAILURE")
    assert dsn.wants_notice({"notify": "success,delay"}, "SUCCESS")
    assert not dsn.wants_notice({"NOTIFY": "SUCCESS"}, "FAILURE")
    assert dsn.original_recipient({"ORCPT": "rfc822;b+2Bx@r.test"}) == "rfc822;b+x@r.test"
    assert dsn.original_recipient({}) == ""


def test_failure_report_structure() -> None:
    info = dsn.ReportInfo("mail.example.test", "alice@example.test", 0.0, envid="id+2B1", ret="")
    rcpt = dsn.DSNRecipient(
        "bob@remote.test",
        "failed",
        "5.1.1",
        original="rfc822;bob@remote.test",
        remote_mta="mx.remote.test",
        diagnostic="smtp; 550 5.1.1 no such user\r\nInjected: header",
        last_attempt=100.0,
    )
    raw = dsn.build_report(info, [rcpt], MESSAGE, full=True, now=200.0)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "alice@example.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    text, status, returned = msg.get_payload()  # type: ignore[misc]
    assert text.get_content_type() == "text/plain"
    assert "bob@remote.test" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_msg, per_rcpt = status.get_payload()
    assert per_msg["Reporting-MTA"] == "dns;mail.example.test"
    assert per_msg["Original-Envelope-Id"] == "id+1"
    assert per_rcpt["Final-Recipient"] == "rfc822;bob@remote.test"
    assert per_rcpt["Original-Recipient"] == "rfc822;bob@remote.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns;mx.remote.test"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user Injected: header"
    assert per_rcpt["Injected"] is None
    assert returned.get_content_type() == "message/rfc822"
    inner = returned.get_payload()[0]
    assert inner["Subject"] == "report"
    assert ".line 2" in inner.get_content()


def test_return_rules() -> None:
    info = dsn.ReportInfo("m", "a@b", 0.0)
    assert dsn.returns_full(info, "failed", 100)
    assert not dsn.returns_full(info, "failed", dsn.FULL_RETURN_LIMIT + 1)
    assert not dsn.returns_full(info, "delayed", 100)
    hdrs = dsn.ReportInfo("m", "a@b", 0.0, ret="HDRS")
    assert not dsn.returns_full(hdrs, "failed", 100)
    full = dsn.ReportInfo("m", "a@b", 0.0, ret="FULL")
    assert dsn.returns_full(full, "failed", dsn.FULL_RETURN_LIMIT + 1)
    assert dsn.header_block(MESSAGE) == b"From: alice@example.test\r\nSubject: report\r\n"


def test_headers_only_and_delay_report() -> None:
    info = dsn.ReportInfo("mail.example.test", "alice@example.test", 0.0)
    rcpt = dsn.DSNRecipient("bob@remote.test", "delayed", "4.4.1", will_retry_until=9999.0)
    raw = dsn.build_report(info, [rcpt], dsn.header_block(MESSAGE), full=False, now=1.0)
    msg = _parse(raw)
    assert msg["Subject"].startswith("Delayed Mail")
    returned = msg.get_payload()[2]  # type: ignore[index]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"line 1" not in raw
    assert b"Will-Retry-Until: " in raw
