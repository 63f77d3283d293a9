"""Delivery status notifications (RFC 3464) and the DSN SMTP extension's
parameters (RFC 3461).

* :func:`wants_notice` applies NOTIFY (RFC 3461 §4.1): ``NEVER`` suppresses
  every DSN, otherwise a list of SUCCESS, FAILURE, DELAY; without NOTIFY we
  report failures and (when delay notices are enabled) delays.
* :func:`build_report` makes a ``multipart/report; report-type=delivery-status``
  message (RFC 3464 §2, RFC 6522): a human-readable part, the
  ``message/delivery-status`` part with per-message fields (Reporting-MTA,
  Original-Envelope-Id from ENVID, Arrival-Date) and per-recipient fields
  (Original-Recipient from ORCPT, Final-Recipient, Action, Status,
  Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), and the
  returned content: the whole message (``message/rfc822``) for a failure when
  RET=FULL or RET is absent and the message is small, else only its header
  (``text/rfc822-headers``, RFC 3461 §4.3).

A DSN is sent with the null reverse-path, so a DSN never causes another one
(RFC 3461 §6.1; the queue also never reports to the null sender).  Text taken
from remote replies is reduced to printable ASCII on one line before it goes
into a header field.
"""

from __future__ import annotations

import email.utils
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

#: RET absent: return the full message on failure up to this size, else headers.
FULL_RETURN_LIMIT = 1024 * 1024
#: at most this much of a message's header is returned
MAX_HEADER_BYTES = 256 * 1024

_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")

SUBJECTS = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Successful Mail Delivery Report",
    "expanded": "Successful Mail Delivery Report",
}


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 §4 xtext (``+XX`` hex escapes)."""
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), value)


def xtext_encode(value: str) -> str:
    """Encode as xtext: ``+``, ``=``, controls and non-ASCII as ``+XX`` (UTF-8 octets)."""
    out = []
    for byte in value.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def param(params: dict[str, str], name: str) -> str | None:
    """A parameter by case-insensitive name (SMTP keywords are case-insensitive)."""
    for key, value in params.items():
        if key.upper() == name:
            return value
    return None


def wants_notice(rcpt_params: dict[str, str], kind: str) -> bool:
    """Whether the sender wants a DSN of ``kind`` (SUCCESS, FAILURE, DELAY)."""
    notify = param(rcpt_params, "NOTIFY")
    if notify is None:
        return kind in ("FAILURE", "DELAY")
    values = {v.strip().upper() for v in notify.split(",")}
    return "NEVER" not in values and kind in values


def original_recipient(rcpt_params: dict[str, str]) -> str:
    """The ORCPT value as ``type;address`` (xtext decoded), or ""."""
    orcpt = param(rcpt_params, "ORCPT")
    if not orcpt or ";" not in orcpt:
        return ""
    kind, _, addr = orcpt.partition(";")
    return f"{kind.strip()};{xtext_decode(addr.strip())}"


def one_line(text: str, limit: int = 900) -> str:
    """Printable ASCII on one line, at most ``limit`` characters."""
    return _UNPRINTABLE.sub("?", " ".join(text.split()))[:limit]


@dataclass(frozen=True)
class DSNRecipient:
    """One recipient's report (RFC 3464 §2.3)."""

    address: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # enhanced status code, e.g. "5.1.1"
    original: str = ""  # "rfc822;addr" from ORCPT
    remote_mta: str = ""
    diagnostic: str = ""  # "smtp; 550 5.1.1 ..." or "" for none
    last_attempt: float | None = None
    will_retry_until: float | None = None


@dataclass(frozen=True)
class ReportInfo:
    """What a report says about the message as a whole."""

    reporting_mta: str
    sender: str  # the original envelope sender: the DSN's recipient
    arrival: float
    envid: str = ""  # ENVID as received (xtext)
    ret: str = ""  # "FULL", "HDRS" or "" (absent)


def _date(ts: float) -> str:
    return email.utils.formatdate(ts, localtime=False, usegmt=True)


def _per_recipient(r: DSNRecipient) -> list[str]:
    lines = []
    if r.original:
        lines.append(f"Original-Recipient: {one_line(r.original)}")
    lines += [
        f"Final-Recipient: rfc822;{one_line(r.address)}",
        f"Action: {r.action}",
        f"Status: {r.status}",
    ]
    if r.remote_mta:
        lines.append(f"Remote-MTA: dns;{one_line(r.remote_mta)}")
    if r.diagnostic:
        lines.append(f"Diagnostic-Code: {one_line(r.diagnostic)}")
    if r.last_attempt is not None:
        lines.append(f"Last-Attempt-Date: {_date(r.last_attempt)}")
    if r.will_retry_until is not None:
        lines.append(f"Will-Retry-Until: {_date(r.will_retry_until)}")
    return lines


def _human_text(info: ReportInfo, recipients: Sequence[DSNRecipient]) -> list[str]:
    action = recipients[0].action
    if action == "failed":
        intro = "Your message could not be delivered to the following recipients:"
    elif action == "delayed":
        intro = "Your message has not been delivered yet; delivery will be retried for:"
    else:
        intro = "Your message was delivered (or passed on) to the following recipients:"
    lines = [f"This is the mail system at {one_line(info.reporting_mta)}.", "", intro, ""]
    for r in recipients:
        lines.append(f"  <{one_line(r.address)}>")
        if r.diagnostic:
            lines.append(f"      {one_line(r.diagnostic.partition(';')[2].strip())}")
    lines += ["", "The delivery report is attached in machine-readable form."]
    return lines


def returns_full(info: ReportInfo, action: str, size: int) -> bool:
    """RFC 3461 §4.3: the full message only in a failure report and if asked
    for (RET=FULL) or RET is absent and the message is small."""
    if action != "failed":
        return False
    if info.ret.upper() == "HDRS":
        return False
    return info.ret.upper() == "FULL" or size <= FULL_RETURN_LIMIT


def header_block(message: bytes) -> bytes:
    """The header of ``message`` (up to and including the blank line)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        head = message[:MAX_HEADER_BYTES]
        return head if head.endswith(b"\r\n") else head + b"\r\n"
    return message[: min(end + 2, MAX_HEADER_BYTES)]


def build_report(
    info: ReportInfo,
    recipients: Sequence[DSNRecipient],
    returned: bytes,
    full: bool,
    now: float,
) -> bytes:
    """The DSN message (CRLF).  ``recipients`` share one action; ``returned``
    is the original message (``full``) or its header block."""
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    action = recipients[0].action
    eight_bit = any(b > 127 for b in returned)
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{one_line(info.reporting_mta)}>",
        f"To: <{one_line(info.sender)}>",
        f"Subject: {SUBJECTS.get(action, 'Delivery Status Notification')}",
        f"Date: {_date(now)}",
        f"Message-ID: <dsn.{secrets.token_hex(10)}@{one_line(info.reporting_mta)}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Description: Notification",
        "",
        *_human_text(info, recipients),
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "Content-Description: Delivery report",
        "",
        f"Reporting-MTA: dns;{one_line(info.reporting_mta)}",
    ]
    if info.envid:
        head.append(f"Original-Envelope-Id: {one_line(xtext_decode(info.envid))}")
    head.append(f"Arrival-Date: {_date(info.arrival)}")
    for r in recipients:
        head += ["", *_per_recipient(r)]
    ctype = "message/rfc822" if full else "text/rfc822-headers"
    desc = "Undelivered Message" if full else "Message Headers"
    head += ["", f"--{boundary}", f"Content-Type: {ctype}", f"Content-Description: {desc}"]
    if eight_bit:
        head.append("Content-Transfer-Encoding: 8bit")
    head += ["", ""]
    body = "\r\n".join(head).encode("ascii") + returned
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + f"\r\n--{boundary}--\r\n".encode("ascii")


def needs_8bitmime(report: bytes) -> bool:
    return any(b > 127 for b in report)
