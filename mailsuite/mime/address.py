"""Address lists for ENVELOPE (RFC 5322 §3.4, RFC 3501 §7.4.2).

:func:`parse_addresses` turns a From/To/Cc/... header value into
:class:`Address` tuples the way the reference server does for ENVELOPE:
broken input still yields addresses, with ``MISSING_MAILBOX``,
``MISSING_DOMAIN``, ``SYNTAX_ERROR`` or ``INVALID_ROUTE`` filled in, and a
group ``name: a, b;`` becomes a start marker ``(None, None, name, None)``,
its members and an end marker ``(None, None, None, None)``.

Values are latin-1 text (one character per byte); never raises.
"""

from __future__ import annotations

from typing import NamedTuple

from mailsuite.mime.rfc822 import Rfc822Parser


class Address(NamedTuple):
    """One ENVELOPE address: (name, adl, mailbox, host); None is NIL."""

    name: str | None
    route: str | None
    mailbox: str | None
    domain: str | None


MAX_ADDRESSES = 10000


class _Ctx:
    __slots__ = ("addrs", "domain", "invalid", "mailbox", "name", "parser", "route")

    def __init__(self, value: str) -> None:
        self.parser = Rfc822Parser(value, keep_comment=True)
        self.addrs: list[Address] = []
        self.reset()

    def reset(self) -> None:
        self.name: str | None = None
        self.route: str | None = None
        self.mailbox: str | None = None
        self.domain: str | None = None
        self.invalid = False

    def add(self) -> None:
        self.addrs.append(Address(self.name, self.route, self.mailbox, self.domain))
        self.reset()

    def add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = "MISSING_MAILBOX"
            self.invalid = True
        if not self.domain:
            self.domain = "MISSING_DOMAIN"
            self.invalid = True
        self.add()

    # -- grammar pieces ------------------------------------------------
    def local_part(self) -> int:
        p = self.parser
        out: list[str] = []
        ret = p.parse_quoted_string(out) if p.at() == '"' else p.parse_dot_atom(out)
        if ret < 0:
            return -1
        self.mailbox = "".join(out)
        return ret

    def parse_domain(self) -> int:
        out: list[str] = []
        ret = self.parser.parse_domain(out)
        if ret < 0:
            return -1
        self.domain = "".join(out)
        return ret

    def domain_list(self) -> int:
        p = self.parser
        out: list[str] = []
        while True:
            if p.pos >= p.end:
                return 0
            if p.data[p.pos] != "@":
                break
            if out:
                out.append(",")
            out.append("@")
            ret = p.parse_domain(out)
            if ret <= 0:
                return ret
            while p.skip_lwsp() > 0 and p.data[p.pos] == ",":
                p.pos += 1
        self.route = "".join(out)
        return 1

    def angle_addr(self) -> int:
        p = self.parser
        p.pos += 1
        if p.skip_lwsp() <= 0:
            return -1
        if p.data[p.pos] == "@":
            if self.domain_list() > 0 and p.at() == ":":
                p.pos += 1
            else:
                self.route = "INVALID_ROUTE"
                if p.pos >= p.end:
                    return -1
            if p.skip_lwsp() <= 0:
                return -1
        if p.data[p.pos] != ">":
            if self.local_part() <= 0:
                return -1
            if p.data[p.pos] == "@" and self.parse_domain() <= 0:
                return -1
        if p.at() != ">":
            return -1
        p.pos += 1
        return p.skip_lwsp()

    def name_addr(self) -> int:
        p = self.parser
        out: list[str] = []
        if p.parse_phrase(out) <= 0 or p.data[p.pos] != "<":
            return -1
        self.name = "".join(out) or None
        if self.angle_addr() < 0:
            self.domain = "SYNTAX_ERROR"
            self.invalid = True
        return 1 if p.pos < p.end else 0

    def addr_spec(self) -> int:
        p = self.parser
        p.last_comment = ""
        quoted = p.at() == '"'
        ret = self.local_part()
        ret2 = -2
        if ret <= 0:
            self.invalid = True
        if ret != 0 and p.pos < p.end and p.data[p.pos] == "@":
            ret2 = self.parse_domain()
            if ret2 <= 0:
                ret = ret2
        if p.last_comment:
            self.name = p.last_comment
        elif ret2 == -2:
            out = [self.mailbox or "", " "]
            before = len("".join(out))
            p.parse_phrase(out)
            text = "".join(out)
            if len(text) != before:
                self.mailbox = None
                self.name = text
            elif not quoted:
                self.domain = ""
            self.invalid = True
            ret = -1
        return ret

    def mailbox_(self) -> int:
        p = self.parser
        start = p.pos
        ret = self.name_addr()
        if ret < 0:
            p.pos = start
            self.reset()
            ret = self.addr_spec()
            if self.invalid and self.name is None and self.domain is None:
                self.name, self.mailbox = self.mailbox, None
        self.add_fixed()
        return ret

    def group(self) -> int:
        p = self.parser
        out: list[str] = []
        if p.parse_phrase(out) <= 0 or p.data[p.pos] != ":":
            return -1
        p.pos += 1
        ret = p.skip_lwsp()
        self.mailbox = "".join(out)
        self.add()
        if ret > 0 and p.data[p.pos] != ";":
            while True:
                self.mailbox_()
                if p.pos >= p.end or p.data[p.pos] != ",":
                    break
                p.pos += 1
                if p.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if p.pos >= p.end or p.data[p.pos] != ";":
                ret = -1
            else:
                p.pos += 1
                ret = p.skip_lwsp()
        self.add()
        return 0 if ret == 0 else 1

    def address(self) -> int:
        p = self.parser
        start = p.pos
        ret = self.group()
        if ret < 0:
            p.pos = start
            self.reset()
            ret = self.mailbox_()
        return ret

    def address_list(self) -> None:
        p = self.parser
        for _ in range(MAX_ADDRESSES):
            if self.address() == 0:
                break
            if p.pos >= p.end or p.data[p.pos] != ",":
                break
            p.pos += 1
            ret = p.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed()
                break


def parse_addresses(value: str) -> list[Address]:
    """The addresses in a header value; empty list when there are none."""
    ctx = _Ctx(value)
    if ctx.parser.skip_lwsp() > 0:
        ctx.address_list()
    return ctx.addrs
