"""In-process scaffolding for protocol unit tests.

The real store, directory, delivery agent and authenticator, built by the
server's own :func:`mailsuite.service.build_context` on a temporary data
directory, with an inline runner (blocking calls run at once), a
:class:`TestReactor` clock and a TLS stand-in.  Protocol tests drive their
sessions over ``StringTransport`` on top of this.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from mailsuite.config import Config
from mailsuite.context import ServerContext
from mailsuite.service import build_context
from mailsuite.threads import InlineRunner

PASSWORD = "correct horse"

#: argon2 costs that keep a login in the test suite around a millisecond.
CHEAP_AUTH: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 8,
    "argon2_parallelism": 1,
    "throttle_base_delay": 0.0,
}


class TestReactor(Clock):
    """A Clock that also runs callFromThread at once (for the change hub)."""

    def callFromThread(self, f: Any, *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class FakeTLS:
    """Stands in for TLSContexts where only "TLS is configured" matters."""

    def server_options(self) -> str:
        return "tls-options"


class TLSRecordingTransport(StringTransport):
    """StringTransport that records startTLS (STARTTLS/STLS tests)."""

    tls_started: Any = None

    def startTLS(self, options: Any) -> None:
        self.tls_started = options


def make_config(
    tmp: Path, hostname: str, sections: dict[str, dict[str, Any]] | None = None, **auth: Any
) -> Config:
    """The embedded defaults with cheap password hashing, ``tmp`` as data dir,
    and ``sections`` (e.g. ``{"imap": {...}}``) replacing keys of a section."""
    base = Config()
    replaced: dict[str, Any] = {
        "server": dataclasses.replace(base.server, data_dir=str(tmp), hostname=hostname),
        "auth": dataclasses.replace(base.auth, **{**CHEAP_AUTH, **auth}),
    }
    for name, values in (sections or {}).items():
        replaced[name] = dataclasses.replace(getattr(base, name), **values)
    return dataclasses.replace(base, **replaced)


def make_context(tmp: Path, config: Config, tls: bool = True) -> ServerContext:
    """A context over the real parts; ``tls=False`` means no TLS configured."""
    tmp.mkdir(parents=True, exist_ok=True)
    ctx = build_context(config, TestReactor(), runner=InlineRunner(), tls=FakeTLS())
    if not tls:
        ctx.tls = None
    return ctx


def add_user(
    ctx: ServerContext,
    address: str,
    password: str = PASSWORD,
    quota_bytes: int = 0,
    quota_messages: int = 0,
) -> None:
    """Create ``address`` (and its domain) in the real directory."""
    directory: Any = ctx.directory
    auth: Any = ctx.auth
    domain = address.rsplit("@", 1)[1]
    if not directory.is_local_domain(domain):
        directory.add_domain(domain)
    directory.add_user(
        address, auth.hasher.hash(password), quota_bytes=quota_bytes, quota_messages=quota_messages
    )
