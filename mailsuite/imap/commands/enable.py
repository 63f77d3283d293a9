"""ENABLE (RFC 5161) and the extensions it can turn on.

:data:`EXTENSIONS` maps a capability name to the function that enables it
for the session (adding the name to ``session.enabled``).  ``* ENABLED``
lists the requested names this command enabled, also when one implied
another (``ENABLE QRESYNC CONDSTORE``), never one enabled before (RFC 5161
§3.1).  Unknown names are ignored, as RFC 5161 requires.  ``CONDSTORE`` and ``QRESYNC``
(RFC 7162 §3.1, §3.2.3) are in :mod:`mailsuite.imap.condstore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mailsuite.imap import condstore
from mailsuite.imap.command import Request, Result, ok
from mailsuite.imap.parser import ParseError

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

EXTENSIONS: dict[str, Callable[[IMAPSession], object]] = {
    "CONDSTORE": condstore.enable_condstore,
    "QRESYNC": condstore.enable_qresync,
}


def enable(s: IMAPSession, req: Request) -> Result:
    """``ENABLE cap...``: ``* ENABLED`` lists the ones newly enabled."""
    if not req.args or not all(isinstance(a, str) for a in req.args):
        raise ParseError("ENABLE needs capability names")
    before = set(s.enabled)
    names: list[str] = []
    for arg in req.args:
        name = str(arg).upper()
        turn_on = EXTENSIONS.get(name)
        if turn_on is not None and name not in names:
            turn_on(s)
            names.append(name)
    done = [n for n in names if n in s.enabled and n not in before]
    s.untagged("ENABLED" + "".join(" " + e for e in done))
    return ok("ENABLE completed")
