"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA.

Every user has one quota root, named ``""`` (RFC 9208 §4.2.2's example),
covering all of the user's mailboxes.  Its resources:

* ``STORAGE`` (§5.1), in units of 1024 octets: usage rounded up, limit
  rounded down, from ``UserRecord.quota_bytes``;
* ``MESSAGE`` (§5.2), the exact number of messages, limit
  ``UserRecord.quota_messages``.

Limits come from the user directory (``context.directory.get_user``),
usage from the store (``Account.usage()``, the Maildir++ ``maildirsize``
that the storage also enforces); both are read in a pool thread on every
command, so a change by ``mailsuite-admin`` shows at once.  A limit of 0
means unlimited, and an unlimited resource is left out of the ``QUOTA``
response (§4.2.1).  Quotas are set by the administrator only: SETQUOTA
answers ``NO [NOPERM]`` and QUOTASET is not advertised (§4.1.3).
``[OVERQUOTA]`` on APPEND/COPY/MOVE comes from the storage's
``MailError(OVER_QUOTA)`` (:mod:`mailsuite.imap.responses`) and from the
check before an APPEND literal is accepted (:mod:`mailsuite.imap.reader`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsuite.imap import responses
from mailsuite.imap.args import mailbox_name
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, no, ok
from mailsuite.imap.parser import ParseError, astring_text, expect_count

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

#: The one quota root of every user.
ROOT = ""
CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE")
_MAX_NUMBER64 = 2**63 - 1


def quota_resources(directory: Any, account: Any, address: str) -> list[tuple[str, int, int]]:
    """Pool thread: (resource, usage, limit) of the limited resources."""
    user = directory.get_user(address)
    max_bytes = int(user.quota_bytes) if user is not None else 0
    max_messages = int(user.quota_messages) if user is not None else 0
    if not max_bytes and not max_messages:
        return []
    used_bytes, used_messages = account.usage()
    out = []
    if max_bytes:
        out.append(("STORAGE", (int(used_bytes) + 1023) // 1024, max_bytes // 1024))
    if max_messages:
        out.append(("MESSAGE", int(used_messages), max_messages))
    return out


def _quota_line(resources: list[tuple[str, int, int]]) -> bytes:
    body = " ".join(f"{name} {usage} {limit}" for name, usage, limit in resources)
    return b"QUOTA " + responses.quoted(ROOT.encode()) + f" ({body})".encode()


def _resources(s: IMAPSession) -> Any:
    return s.run(quota_resources, s.context.directory, s.account, s.user.address)


def getquota(s: IMAPSession, req: Request) -> Any:
    """§4.1.1 ``GETQUOTA root``: the QUOTA response, or NO for another root."""
    expect_count(req.args, 1)
    if astring_text(req.args[0], "quota root") != ROOT:
        return no("No such quota root", "NONEXISTENT")

    def answer(resources: list[tuple[str, int, int]]) -> Result:
        s.untagged(_quota_line(resources))
        return ok("GETQUOTA completed")

    return _resources(s).addCallback(answer)


def getquotaroot(s: IMAPSession, req: Request) -> Any:
    """§4.1.2 ``GETQUOTAROOT mailbox``: QUOTAROOT and QUOTA responses.  The
    mailbox need not exist (its quota root would be the same)."""
    expect_count(req.args, 1)
    name = mailbox_name(req.args[0])

    def answer(resources: list[tuple[str, int, int]]) -> Result:
        s.untagged(b"QUOTAROOT " + responses.astring(name) + b" " + responses.quoted(b""))
        s.untagged(_quota_line(resources))
        return ok("GETQUOTAROOT completed")

    return _resources(s).addCallback(answer)


def setquota(s: IMAPSession, req: Request) -> Result:
    """§4.1.3 ``SETQUOTA root (resource limit ...)``: checked, then refused."""
    expect_count(req.args, 2)
    astring_text(req.args[0], "quota root")
    limits = req.args[1]
    if not isinstance(limits, list) or len(limits) % 2:
        raise ParseError("SETQUOTA needs a list of resource limits")
    for i in range(0, len(limits), 2):
        name, value = limits[i], limits[i + 1]
        if not isinstance(name, str) or not isinstance(value, str) or not value.isdigit():
            raise ParseError("Invalid resource limit")
        if len(value) > 19 or int(value) > _MAX_NUMBER64:
            raise ParseError("Invalid resource limit")
    return no("Quotas are set by the administrator", "NOPERM")


COMMANDS = (
    Command("GETQUOTA", getquota, AUTHENTICATED),
    Command("GETQUOTAROOT", getquotaroot, AUTHENTICATED),
    Command("SETQUOTA", setquota, AUTHENTICATED),
)
