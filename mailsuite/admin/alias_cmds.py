"""``alias add|del|list``."""

from __future__ import annotations

import argparse
from typing import Any

from mailsuite.admin import common, exits, tables
from mailsuite.admin.env import AdminEnv


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("alias", help="manage aliases (forwarding, catch-all @domain)")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    a = sub.add_parser(
        "add",
        help="add targets to an alias (created if new)",
        description="Mail to SOURCE goes to every TARGET. SOURCE is local@domain or "
        "@domain (catch-all) in a local domain; a TARGET is a local user or alias, or "
        "a remote address. Loops are refused.",
    )
    a.add_argument("source")
    a.add_argument("targets", nargs="+", metavar="TARGET")
    a.set_defaults(handler=cmd_add)
    d = sub.add_parser("del", help="remove some targets, or the whole alias")
    d.add_argument("source")
    d.add_argument("targets", nargs="*", metavar="TARGET")
    d.set_defaults(handler=cmd_del)
    ls = sub.add_parser("list", help="list aliases, of all domains or of one")
    ls.add_argument("domain", nargs="?")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_list)


def cmd_add(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        info = common.directory(env).add_alias(args.source, args.targets)
    env.out(f"alias {info.source} -> {', '.join(info.targets)}")
    return exits.OK


def cmd_del(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        removed = common.directory(env).delete_alias(args.source, args.targets or None)
    what = "alias" if not args.targets else f"{removed} target(s) of alias"
    env.out(f"{what} {args.source} deleted")
    return exits.OK


def cmd_list(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        aliases = common.directory(env).list_aliases(args.domain)
    if args.json:
        tables.as_json(env, [{"alias": a.source, "targets": list(a.targets)} for a in aliases])
    else:
        tables.table(
            env, ("ALIAS", "TARGETS"), [(a.source, ", ".join(a.targets)) for a in aliases]
        )
    return exits.OK
