"""``domain add|del|list``."""

from __future__ import annotations

import argparse
from typing import Any

from mailsuite.admin import common, exits, tables
from mailsuite.admin.env import AdminEnv


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("domain", help="manage local domains")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    a = sub.add_parser("add", help="add a local domain (Unicode names are stored as IDNA)")
    a.add_argument("domain")
    a.set_defaults(handler=cmd_add)
    d = sub.add_parser("del", help="delete a domain that has no users or aliases left")
    d.add_argument("domain")
    d.set_defaults(handler=cmd_del)
    ls = sub.add_parser("list", help="list local domains with their user and alias counts")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=cmd_list)


def cmd_add(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        name = common.directory(env).add_domain(args.domain)
    env.out(f"domain {name} added")
    return exits.OK


def cmd_del(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        common.directory(env).delete_domain(args.domain)
    env.out(f"domain {args.domain} deleted")
    return exits.OK


def cmd_list(args: argparse.Namespace, env: AdminEnv) -> int:
    with common.mail_errors():
        domains = common.directory(env).list_domains()
    if args.json:
        tables.as_json(
            env,
            [
                {"domain": d.name, "users": d.users, "aliases": d.aliases, "created": d.created}
                for d in domains
            ],
        )
    else:
        rows = [(d.name, d.users, d.aliases, tables.format_time(d.created)) for d in domains]
        tables.table(env, ("DOMAIN", "USERS", "ALIASES", "CREATED"), rows)
    return exits.OK
