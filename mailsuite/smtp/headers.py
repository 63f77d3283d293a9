"""Trace fields the server prepends (RFC 5321 §4.4, RFC 3848, RFC 6531 §3.7.3).

* ``Return-Path: <sender>`` — only on the copy delivered to a local mailbox
  (final delivery); the copy for the outbound queue gets none.
* ``Received:`` on every copy::

    Received: from client.example ([192.0.2.1])
        (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
        (authenticated sender: alice@example.test)
        by mail.example.test (mailsuite) with ESMTPSA id c7.2
        for <bob@example.test>; Fri, 27 Nov 2026 14:50:18 +0000

  The client's EHLO name is shown only when it is a syntactically valid
  domain or address literal; no reverse DNS is looked up.  ``for`` is added
  only for a single recipient (several would disclose Bcc recipients).
  The protocol name follows RFC 3848/6531 (SMTP, ESMTP, +S for TLS, +A for
  AUTH, UTF8SMTP... when SMTPUTF8 was used).
"""

from __future__ import annotations

import datetime
import email.utils
import functools
import re
import time
from dataclasses import dataclass

_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
)
_LITERAL = re.compile(r"\[(?:IPv6:)?[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What a Received field records about the session and the message."""

    hostname: str
    helo: str
    peer: str
    esmtp: bool
    tls: tuple[str, str] | None
    user: str | None
    smtputf8: bool
    message_id: str
    recipients: tuple[str, ...]


@functools.lru_cache(maxsize=256)  # sessions say the same EHLO name message after message
def _helo_text(helo: str) -> str:
    if _DOMAIN.fullmatch(helo) or _LITERAL.fullmatch(helo):
        return helo
    try:
        ascii_helo = helo.encode("idna").decode("ascii")
    except UnicodeError:
        return "unknown"
    return ascii_helo if _DOMAIN.fullmatch(ascii_helo) else "unknown"


def _peer_literal(peer: str) -> str:
    return f"[IPv6:{peer}]" if ":" in peer else f"[{peer}]"


def _comment(text: str) -> str:
    """A safe comment body: no parentheses, backslashes or controls."""
    return "".join(c if c.isprintable() and c not in "()\\" else "?" for c in text)


def protocol_name(info: TraceInfo) -> str:
    """RFC 3848 / RFC 6531 §3.7.3 "with" keyword."""
    base = "UTF8SMTP" if info.smtputf8 else "ESMTP" if info.esmtp else "SMTP"
    suffix = ("S" if info.tls else "") + ("A" if info.user else "")
    return base + suffix


@functools.lru_cache(maxsize=4)
def _utc_date(second: int) -> str:
    """RFC 5322 date-time of a whole second, UTC (memoised: one format per
    second however many messages arrive in it)."""
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(second, datetime.UTC))


def received(info: TraceInfo, now: datetime.datetime | None = None) -> bytes:
    """The Received field, folded, ending with CRLF."""
    lines = [f"Received: from {_helo_text(info.helo)} ({_peer_literal(info.peer)})"]
    if info.tls:
        version, cipher = info.tls
        lines.append(f"\t(using {_comment(version)} with cipher {_comment(cipher)})")
    if info.user:
        lines.append(f"\t(authenticated sender: {_comment(info.user)})")
    lines.append(
        f"\tby {info.hostname} (mailsuite) with {protocol_name(info)} id {info.message_id}"
    )
    date = email.utils.format_datetime(now) if now else _utc_date(int(time.time()))
    if len(info.recipients) == 1:
        lines.append(f"\tfor <{info.recipients[0]}>; {date}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{date}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path(sender: str) -> bytes:
    """``Return-Path: <sender>`` with CRLF (``<>`` for the null sender)."""
    return f"Return-Path: <{sender}>\r\n".encode()
