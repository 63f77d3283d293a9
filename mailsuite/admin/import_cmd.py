"""``import-dovecot-passwd FILE``: users with their existing hashes.

Reads a Dovecot passwd-file (``user:password:uid:gid:gecos:home:shell:extra``,
blank lines and ``#`` comments ignored).  The password field is kept as is
(``{SCHEME}...`` or a bare crypt string, Dovecot's default CRYPT scheme);
it is replaced by argon2id the first time the user logs in.  Only the user
and password fields are used.

Lines that cannot be imported are reported as ``FILE:LINE: reason`` on
stderr; the command then exits 65 (EX_DATAERR) after importing the rest.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailsuite.admin import common, exits
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.errors import ErrorKind, MailError
from mailsuite.users import addresses


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import-dovecot-passwd",
        help="import users and password hashes from a Dovecot passwd-file",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("file")
    p.add_argument("--domain", help="domain for user names without @domain")
    p.add_argument("--create-domains", action="store_true", help="add missing domains")
    p.add_argument("--update", action="store_true", help="replace hashes of existing users")
    p.add_argument("--dry-run", action="store_true", help="check the file, change nothing")
    p.set_defaults(handler=cmd_import)


def _parse(line: str, default_domain: str | None, env: AdminEnv) -> tuple[str, str]:
    fields = line.split(":")
    if len(fields) < 2:
        raise ValueError("expected user:password:...")
    user, stored = fields[0].strip(), fields[1].strip()
    if "@" not in user:
        if not default_domain:
            raise ValueError(f"user {user!r} has no domain (use --domain)")
        user = f"{user}@{default_domain}"
    try:
        address = addresses.normalise(user, env.config.users.localpart_case_sensitive)
    except MailError:
        raise ValueError(f"invalid address {user!r}")
    if not stored:
        raise ValueError(f"{address}: empty password field")
    if common.hasher(env).identify(stored) is None:
        raise ValueError(f"{address}: unsupported password scheme")
    return address, stored


def cmd_import(args: argparse.Namespace, env: AdminEnv) -> int:
    try:
        with open(args.file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise AdminError(f"{args.file}: file not found", exits.NOINPUT)
    except (OSError, UnicodeDecodeError) as e:
        raise AdminError(f"{args.file}: cannot read: {e}", exits.NOINPUT)
    directory = common.directory(env)
    counts = {"added": 0, "updated": 0, "skipped": 0}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            address, stored = _parse(line, args.domain, env)
            counts[_import_one(directory, env, address, stored, args)] += 1
        except ValueError as e:
            counts["skipped"] += 1
            print(f"{args.file}:{number}: {e}", file=sys.stderr)
        except MailError as e:
            if e.kind is ErrorKind.TEMPORARY:
                raise common.admin_error(e)
            counts["skipped"] += 1
            print(f"{args.file}:{number}: {e.public_text}", file=sys.stderr)
    prefix = "would import" if args.dry_run else "imported"
    env.out(
        f"{prefix}: {counts['added']} added, {counts['updated']} updated,"
        f" {counts['skipped']} skipped"
    )
    return exits.DATAERR if counts["skipped"] else exits.OK


def _import_one(
    directory: Any, env: AdminEnv, address: str, stored: str, args: argparse.Namespace
) -> str:
    domain = addresses.domain_of(address)
    exists = directory.get_user_info(address) is not None
    if exists and not args.update:
        raise ValueError(f"{address}: already exists (use --update to replace its hash)")
    if not directory.is_local_domain(domain) and not args.create_domains:
        raise ValueError(f"{address}: domain {domain} is not local (use --create-domains)")
    if args.dry_run:
        return "updated" if exists else "added"
    if exists:
        directory.set_password_hash(address, stored)
        return "updated"
    if not directory.is_local_domain(domain):
        directory.add_domain(domain)
    directory.add_user(address, stored)
    common.ensure_maildir(env, address)
    return "added"
