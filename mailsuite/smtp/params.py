"""ESMTP parameters of MAIL and RCPT.

Implemented (each validated; values kept in :class:`MailParams` /
``Envelope.params`` and ``Envelope.rcpt_params`` for the queue):

* SIZE (RFC 1870 §6): decimal; over the limit -> 552 5.3.4 at MAIL.
* BODY (RFC 6152): ``7BIT`` or ``8BITMIME``; BINARYMIME is not offered.
* SMTPUTF8 (RFC 6531 §3.4): no value.
* RET, ENVID (RFC 3461 §4.3, §4.4): ``FULL``/``HDRS``; xtext of at most
  100 characters that decodes to printable ASCII.  Stored as received.
* AUTH (RFC 4954 §5): syntax checked and ignored — we do not trust a
  client's claim about an earlier authentication.
* NOTIFY, ORCPT (RFC 3461 §4.1, §4.2) on RCPT: ``NEVER`` or a list of
  ``SUCCESS``, ``FAILURE``, ``DELAY``; ``addr-type;xtext``.

Unknown keywords -> 555 5.5.4 (RFC 5321 §4.1.1.11), a repeated keyword or a
bad value -> 501 5.5.4.  Keywords are case-insensitive; stored upper-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailsuite.smtp import replies
from mailsuite.smtp.replies import Refused

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_MAX_DIGITS = 20


def _fail(reply: replies.Reply) -> Refused:
    return Refused(reply)


def split_params(text: str) -> dict[str, str | None]:
    """``" KEY=value KEY2"`` -> ``{"KEY": "value", "KEY2": None}``.

    Raises Refused (501) for bad syntax or a repeated keyword.
    """
    out: dict[str, str | None] = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(key) or (eq and not _VALUE.fullmatch(value)):
            raise _fail(replies.BAD_SYNTAX)
        key = key.upper()
        if key in out:
            raise _fail(replies.DUPLICATE_PARAMETER)
        out[key] = value if eq else None
    return out


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 §4 xtext; raises Refused for malformed input."""
    if not _XTEXT.fullmatch(value):
        raise _fail(replies.BAD_PARAMETER_VALUE)
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


@dataclass(slots=True)
class MailParams:
    """What MAIL's parameters said.  ``stored`` goes to ``Envelope.params``."""

    size: int | None = None
    smtputf8: bool = False
    stored: dict[str, str] = field(default_factory=dict)


def _size(value: str | None, max_size: int) -> int:
    if value is None or not value.isdigit() or len(value) > _MAX_DIGITS:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    size = int(value)
    if size > max_size:
        raise _fail(replies.SIZE_AT_MAIL)
    return size


def _keyword_value(value: str | None, allowed: tuple[str, ...]) -> str:
    if value is None or value.upper() not in allowed:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    return value.upper()


def parse_mail_params(text: str, max_size: int, esmtp: bool) -> MailParams:
    """Validate MAIL parameters (see the module doc).  ``esmtp`` is False
    after HELO: then no parameter is allowed."""
    raw = split_params(text)
    if raw and not esmtp:
        raise _fail(replies.BAD_PARAMETER)
    result = MailParams()
    for key, value in raw.items():
        if key == "SIZE":
            result.size = _size(value, max_size)
        elif key == "BODY":
            result.stored["BODY"] = _keyword_value(value, ("7BIT", "8BITMIME"))
        elif key == "SMTPUTF8":
            if value is not None:
                raise _fail(replies.BAD_PARAMETER_VALUE)
            result.smtputf8 = True
            result.stored["SMTPUTF8"] = ""
        elif key == "RET":
            result.stored["RET"] = _keyword_value(value, ("FULL", "HDRS"))
        elif key == "ENVID":
            _check_envid(value)
            result.stored["ENVID"] = value  # type: ignore[assignment]
        elif key == "AUTH":
            if value is None or (value != "<>" and not _XTEXT.fullmatch(value)):
                raise _fail(replies.BAD_PARAMETER_VALUE)
        else:
            raise _fail(replies.BAD_PARAMETER)
    return result


def _check_envid(value: str | None) -> None:
    if value is None:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    decoded = xtext_decode(value)
    if not decoded or len(decoded) > 100 or not all(0x20 <= ord(c) < 0x7F for c in decoded):
        raise _fail(replies.BAD_PARAMETER_VALUE)


_NOTIFY = {"SUCCESS", "FAILURE", "DELAY"}


def _notify(value: str | None) -> str:
    if value is None:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    items = [v.upper() for v in value.split(",")]
    if items == ["NEVER"]:
        return "NEVER"
    if not items or len(set(items)) != len(items) or not set(items) <= _NOTIFY:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    return ",".join(items)


def _orcpt(value: str | None) -> str:
    if value is None:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    addr_type, semi, xtext = value.partition(";")
    if not semi or not _ADDR_TYPE.fullmatch(addr_type) or not xtext:
        raise _fail(replies.BAD_PARAMETER_VALUE)
    if addr_type.lower() == "utf-8":
        # RFC 6533 §3: utf-8-addr-xtext; accept printable text, no controls.
        if any(ord(c) < 0x21 or c == "=" for c in xtext):
            raise _fail(replies.BAD_PARAMETER_VALUE)
    else:
        decoded = xtext_decode(xtext)
        if len(decoded) > 500:
            raise _fail(replies.BAD_PARAMETER_VALUE)
    return value


def parse_rcpt_params(text: str, esmtp: bool) -> dict[str, str]:
    """Validate RCPT parameters; returns those to store (NOTIFY, ORCPT)."""
    raw = split_params(text)
    if raw and not esmtp:
        raise _fail(replies.BAD_PARAMETER)
    stored: dict[str, str] = {}
    for key, value in raw.items():
        if key == "NOTIFY":
            stored["NOTIFY"] = _notify(value)
        elif key == "ORCPT":
            stored["ORCPT"] = _orcpt(value)
        else:
            raise _fail(replies.BAD_PARAMETER)
    return stored
