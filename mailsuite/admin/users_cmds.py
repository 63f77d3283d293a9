"""``user add|del|passwd|list|show|enable|disable|quota``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from mailsuite.admin import common, exits, tables
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.errors import MailError
from mailsuite.users import addresses


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("user", help="manage mail users")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    a = sub.add_parser("add", help="create a user (asks for the password twice)")
    a.add_argument("address")
    common.add_password_option(a)
    a.add_argument("--quota-bytes", metavar="SIZE", default="0", help="e.g. 2G; 0 = unlimited")
    a.add_argument("--quota-messages", metavar="N", type=int, default=0, help="0 = unlimited")
    a.add_argument("--disabled", action="store_true", help="create the account disabled")
    a.set_defaults(handler=cmd_add)

    d = sub.add_parser("del", help="delete a user (the maildir is kept unless --purge)")
    d.add_argument("address")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    d.add_argument("--purge", action="store_true", help="also delete the user's maildir")
    d.set_defaults(handler=cmd_del)

    pw = sub.add_parser("passwd", help="set a user's password")
    pw.add_argument("address")
    common.add_password_option(pw)
    pw.set_defaults(handler=cmd_passwd)

    ls = sub.add_parser("list", help="list users, of all domains or of one")
    ls.add_argument("domain", nargs="?")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_list)

    sh = sub.add_parser("show", help="show one user")
    sh.add_argument("address")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(handler=cmd_show)

    for name, enabled in (("enable", True), ("disable", False)):
        e = sub.add_parser(name, help=f"{name} logins of a user (mail is still delivered)")
        e.add_argument("address")
        e.set_defaults(handler=cmd_enable, enabled=enabled)

    q = sub.add_parser("quota", help="show or set a user's quota")
    q.add_argument("address")
    q.add_argument("--bytes", metavar="SIZE", help="storage limit, e.g. 500M; 0 = unlimited")
    q.add_argument("--messages", metavar="N", type=int, help="message limit; 0 = unlimited")
    q.set_defaults(handler=cmd_quota)


def _non_negative(value: int, what: str) -> int:
    if value < 0:
        raise AdminError(f"{what} must be >= 0", exits.USAGE)
    return value


def cmd_add(args: argparse.Namespace, env: AdminEnv) -> int:
    quota = tables.parse_size(args.quota_bytes)
    messages = _non_negative(args.quota_messages, "--quota-messages")
    directory = common.directory(env)
    with common.mail_errors():
        # Validate before prompting, so a typo does not cost a password prompt.
        addr = addresses.normalise(args.address, env.config.users.localpart_case_sensitive)
        if not directory.is_local_domain(addresses.domain_of(addr)):
            raise AdminError(
                f"domain {addresses.domain_of(addr)} is not a local domain", exits.NOUSER
            )
        if directory.get_user_info(addr) is not None:
            raise AdminError(f"user {addr} already exists", exits.CANTCREAT)
        password_hash = common.hasher(env).hash(common.new_password(args, env))
        addr = directory.add_user(addr, password_hash, quota, messages, not args.disabled)
    common.ensure_maildir(env, addr)
    env.out(f"user {addr} added")
    return exits.OK


def _account_dir(env: AdminEnv, address: str) -> Path | None:
    """The user's maildir, if it can be located safely inside ``<data>/mail``."""
    root = common.mail_root(env).resolve()
    s = common.store(env)
    path: Path | None = None
    if s is not None and hasattr(s, "account_path"):
        try:
            path = Path(s.account_path(address))
        except MailError:
            return None
    if path is None:
        local, domain = address.rsplit("@", 1)
        path = common.mail_root(env) / domain / local
    path = path.resolve()
    # Only <root>/<domain>/<something>, never the root or a whole domain.
    if not path.is_relative_to(root) or len(path.relative_to(root).parts) < 2:
        return None
    return path


def _existing_user(directory: Any, address: str) -> Any:
    """The user's record; AdminError NOUSER (67) if there is none."""
    info = directory.get_user_info(address)
    if info is None:
        raise AdminError(f"user {address} does not exist", exits.NOUSER)
    return info


def cmd_del(args: argparse.Namespace, env: AdminEnv) -> int:
    directory = common.directory(env)
    with common.mail_errors():
        info = _existing_user(directory, args.address)
    what = "user and maildir" if args.purge else "user (the maildir is kept)"
    if not args.yes and not common.confirm(env, f"Delete {what} {info.address}?"):
        raise AdminError("not deleted", exits.NOPERM)
    with common.mail_errors():
        removed = directory.delete_user(info.address)
    env.out(f"user {info.address} deleted")
    if removed:
        env.out(f"removed it from {removed} alias(es)")
    if args.purge:
        path = _account_dir(env, info.address)
        if path is None:
            raise AdminError(f"cannot locate the maildir of {info.address} safely", exits.SOFTWARE)
        if path.exists():
            try:
                shutil.rmtree(path)
            except OSError as e:
                raise AdminError(f"cannot delete {path}: {e.strerror}", exits.IOERR)
            env.out(f"maildir {path} deleted")
    return exits.OK


def cmd_passwd(args: argparse.Namespace, env: AdminEnv) -> int:
    directory = common.directory(env)
    with common.mail_errors():
        info = _existing_user(directory, args.address)
        directory.set_password_hash(
            info.address, common.hasher(env).hash(common.new_password(args, env))
        )
    env.out(f"password of {info.address} changed")
    return exits.OK


def _user_dict(info: Any) -> dict[str, Any]:
    return {
        "address": info.address,
        "enabled": info.enabled,
        "quota_bytes": info.quota_bytes,
        "quota_messages": info.quota_messages,
        "created": info.created,
    }


def cmd_list(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        users = common.directory(env).list_users(args.domain)
    if args.json:
        tables.as_json(env, [_user_dict(u) for u in users])
        return exits.OK
    rows = [
        (
            u.address,
            "yes" if u.enabled else "no",
            tables.format_size(u.quota_bytes),
            tables.format_count(u.quota_messages),
            tables.format_time(u.created),
        )
        for u in users
    ]
    tables.table(env, ("ADDRESS", "ENABLED", "QUOTA", "MESSAGES", "CREATED"), rows)
    return exits.OK


def cmd_show(args: argparse.Namespace, env: AdminEnv) -> int:
    directory = common.directory(env)
    with common.mail_errors():
        info = _existing_user(directory, args.address)
        stored = directory.get_password_hash(info.address) or ""
        aliases = sorted(directory.sender_addresses(info.address) - {info.address})
    data = _user_dict(info)
    data["password_scheme"] = common.hasher(env).identify(stored) or "unknown"
    data["aliases"] = aliases
    s = common.store(env)
    if s is not None:
        try:
            data["used_bytes"], data["used_messages"] = s.account(info.address).usage()
        except (MailError, OSError):
            pass
    if args.json:
        tables.as_json(env, data)
        return exits.OK
    rows = [
        ("address", info.address),
        ("enabled", "yes" if info.enabled else "no"),
        ("quota", tables.format_size(info.quota_bytes)),
        ("quota messages", tables.format_count(info.quota_messages)),
        ("created", tables.format_time(info.created)),
        ("password scheme", data["password_scheme"]),
        ("aliases", ", ".join(aliases) or "-"),
    ]
    if "used_bytes" in data:
        rows.append(("used", f"{data['used_bytes']} bytes, {data['used_messages']} messages"))
    for key, value in rows:
        env.out(f"{key + ':':<17}{value}")
    return exits.OK


def cmd_enable(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        common.directory(env).set_enabled(args.address, args.enabled)
    env.out(f"user {args.address} {'enabled' if args.enabled else 'disabled'}")
    return exits.OK


def cmd_quota(args: argparse.Namespace, env: AdminEnv) -> int:
    directory = common.directory(env)
    with common.mail_errors():
        info = _existing_user(directory, args.address)
        if args.bytes is None and args.messages is None:
            env.out(
                f"{info.address}: {tables.format_size(info.quota_bytes)},"
                f" {tables.format_count(info.quota_messages)} messages"
            )
            return exits.OK
        size = info.quota_bytes if args.bytes is None else tables.parse_size(args.bytes)
        count = info.quota_messages if args.messages is None else args.messages
        directory.set_quota(info.address, size, _non_negative(count, "--messages"))
    env.out(
        f"quota of {info.address} set to {tables.format_size(size)},"
        f" {tables.format_count(count)} messages"
    )
    return exits.OK
