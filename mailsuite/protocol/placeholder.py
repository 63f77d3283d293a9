"""A temporary-failure listener for roles whose protocol is not built yet."""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol

from mailsuite.protocol.lines import LineFactory, LineProtocol

_GREETINGS = {
    "smtp": b"421 4.3.2 %s Service not available yet, closing connection",
    "pop3": b"-ERR [SYS/TEMP] %s service not available yet",
    "imap": b"* BYE [UNAVAILABLE] %s service not available yet",
}


class _TempFail(LineProtocol):
    def connection_started(self) -> None:
        self.send_line(self.factory.greeting)  # type: ignore[attr-defined]
        self.close()

    def line_received(self, line: bytes) -> None:
        return None


class TempFailFactory(LineFactory):
    protocol = _TempFail

    def __init__(self, context: Any, role: str, implicit_tls: bool = False) -> None:
        super().__init__(context, role, implicit_tls)
        family = "smtp" if role.startswith("sub") or role == "smtp" else role.rstrip("s")
        host = context.config.server.hostname.encode("idna")
        self.greeting = _GREETINGS[family] % host


def make_factory(context: Any, role: str, implicit_tls: bool) -> protocol.Factory:
    return TempFailFactory(context, role, implicit_tls)
