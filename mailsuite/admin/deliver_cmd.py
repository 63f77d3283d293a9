"""``deliver ADDRESS [--mailbox NAME]``: a local delivery agent (LDA).

Reads one message from standard input, resolves ADDRESS through the
directory (aliases, subaddressing, catch-all) and stores a copy in every
local account it reaches, through the same delivery agent as SMTP
(:class:`mailsuite.delivery.agent.MaildirDeliveryAgent`).  Line ends are
normalised to CRLF, as stored.

Exit status, as an MTA expects from an LDA (sysexits):
0 delivered; 67 (EX_NOUSER) unknown address; 65 (EX_DATAERR) malformed
address; 75 (EX_TEMPFAIL) anything that may work later (I/O error, lock,
quota, an alias that forwards to remote addresses, which this command
cannot send) -- the MTA keeps the message and retries.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsuite.admin import common, exits
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Envelope, LocalTarget
from mailsuite.storage.names import normalize

CHUNK = 64 * 1024


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "deliver",
        help="deliver a message from standard input to a local address",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("address")
    p.add_argument("--mailbox", metavar="NAME", default="INBOX", help="folder (default INBOX)")
    p.add_argument("-f", "--from", dest="sender", default="", help="envelope sender")
    p.set_defaults(handler=cmd_deliver)


def agent(env: AdminEnv) -> Any:
    """The delivery agent over ``<data>/mail`` (quotas from the directory)."""

    def build() -> Any:
        try:
            from mailsuite.delivery.agent import MaildirDeliveryAgent
        except ImportError as e:
            raise AdminError(f"delivery is not available: {e}", exits.TEMPFAIL)
        store = common.store(env)
        if store is None:
            raise AdminError("the mail store is not available", exits.TEMPFAIL)
        directory = common.directory(env)

        def quota_lookup(address: str) -> tuple[int, int]:
            user = directory.get_user(address)
            return (user.quota_bytes, user.quota_messages) if user else (0, 0)

        return MaildirDeliveryAgent(store, quota_lookup=quota_lookup)

    return env.resource("agent", build)


def _crlf_chunks(stream: Any) -> Any:
    """Yield the input with every line end as CRLF (a bare CR or LF too)."""
    pending_cr = False
    while True:
        data = stream.read(CHUNK)
        if not data:
            break
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if pending_cr:
            data = b"\r" + data
        pending_cr = data.endswith(b"\r")
        if pending_cr:
            data = data[:-1]
        yield data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if pending_cr:
        yield b"\r\n"


def _targets(env: AdminEnv, address: str, mailbox: str) -> list[LocalTarget]:
    try:
        resolution = common.directory(env).resolve(address)
    except MailError as e:
        if e.kind is ErrorKind.UNKNOWN_MAILBOX:
            raise AdminError(f"{address}: no such user", exits.NOUSER)
        if e.kind is ErrorKind.BAD_ADDRESS:
            raise AdminError(f"{address}: invalid address", exits.DATAERR)
        raise AdminError(f"{address}: {e.public_text}", exits.TEMPFAIL)
    for remote in resolution.remote:
        print(f"mailsuite-admin: {address}: not forwarded to remote {remote}", file=sys.stderr)
    if not resolution.local:
        raise AdminError(f"{address}: forwards only to remote addresses", exits.TEMPFAIL)
    return [LocalTarget(t.account, mailbox) for t in resolution.local]


def _folder(name: str) -> str:
    """The folder name as the store spells it; an invalid name is a usage
    error (64).  A valid name of a folder that does not exist is delivered to
    INBOX by the agent, as an LDA without autocreate does."""
    try:
        return normalize(name)
    except MailError:
        raise AdminError(f"invalid mailbox name {name!r}", exits.USAGE)


def cmd_deliver(args: argparse.Namespace, env: AdminEnv) -> int:
    targets = _targets(env, args.address, _folder(args.mailbox))
    stdin = getattr(env.stdin, "buffer", env.stdin)
    try:
        delivery = agent(env).begin(Envelope(args.sender, [args.address]))
        try:
            for chunk in _crlf_chunks(stdin):
                delivery.write(chunk)
            results = delivery.commit({args.address: targets})
        except BaseException:
            delivery.abort()
            raise
    except MailError as e:
        raise AdminError(f"{args.address}: {e.public_text}", _exit_code(e))
    except OSError as e:
        raise AdminError(f"{args.address}: {e.strerror or e}", exits.TEMPFAIL)
    failed = [r for r in results if r.error is not None]
    if failed:
        err = failed[0].error
        text = err.public_text if isinstance(err, MailError) else str(err)
        code = _exit_code(err) if isinstance(err, MailError) else exits.TEMPFAIL
        raise AdminError(f"{args.address}: {text}", code)
    return exits.OK


def _exit_code(e: MailError) -> int:
    if e.kind is ErrorKind.UNKNOWN_MAILBOX:
        return exits.NOUSER
    return exits.TEMPFAIL
