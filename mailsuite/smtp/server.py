"""The SMTP listeners: ``smtp`` (MX), ``submission`` and ``submissions``.

``make_factory(context, role, implicit_tls)`` is what ``mailsuite.service``
calls for each role (implicit TLS wrapping is done there).  Roles differ
only in policy, decided in the session and its command handlers:

* ``smtp`` — inbound MX: local domains only, never relays, no AUTH.
* ``submission`` — STARTTLS before AUTH, AUTH before MAIL.
* ``submissions`` — the same over implicit TLS (RFC 8314).
"""

from __future__ import annotations

from typing import Any

from mailsuite.protocol.lines import LineFactory, LineProtocol
from mailsuite.smtp.lookups import LookupBatcher
from mailsuite.smtp.session import SMTPSession

ROLES = ("smtp", "submission", "submissions")


class SMTPFactory(LineFactory):
    """Builds one :class:`SMTPSession` per connection within the limits."""

    def __init__(self, context: Any, role: str, implicit_tls: bool = False) -> None:
        if role not in ROLES:
            raise ValueError(f"not an SMTP role: {role}")
        super().__init__(context, role, implicit_tls)
        self.hostname: str = context.config.server.hostname
        self.refusal = f"421 4.7.0 {self.hostname} Too many connections\r\n".encode()
        self.lookups = LookupBatcher(context)  # RCPT and sender checks of all sessions

    def build(self, addr: Any) -> LineProtocol:
        return SMTPSession(self.context.config.smtp)


def make_factory(context: Any, role: str, implicit_tls: bool) -> SMTPFactory:
    return SMTPFactory(context, role, implicit_tls)
