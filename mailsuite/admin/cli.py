"""``mailsuite-admin``: the administration command.

Subcommands live in small modules that each expose ``register(subparsers)``;
every subcommand sets ``handler`` (``handler(args, env) -> int``) with
:func:`argparse.ArgumentParser.set_defaults`.  Handlers return sysexits
codes (:mod:`mailsuite.admin.exits`) and report failures by raising
:class:`AdminError` (one clear line on stderr, no traceback).

The command works while the server runs: it opens the same SQLite directory
and Maildir store directly, and the server sees its changes at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mailsuite import __version__, config
from mailsuite.admin import exits
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.errors import ConfigError

#: Modules with a ``register(subparsers)`` function, in help order.
COMMAND_MODULES = [
    "mailsuite.admin.basic",
    "mailsuite.admin.domains_cmds",
    "mailsuite.admin.users_cmds",
    "mailsuite.admin.alias_cmds",
    "mailsuite.admin.deliver_cmd",
    "mailsuite.admin.import_cmd",
    "mailsuite.admin.queue_cmds",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailsuite-admin",
        description="Administer a mailsuite server: domains, users, aliases, delivery, queue.",
    )
    add_common_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``-c/--config`` and ``--data-dir``, the same as ``twistd mailsuite``."""
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="TOML config file (default: embedded defaults)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="data directory (overrides the config)")


def main(argv: Sequence[str] | None = None, stdin: Any = None, stdout: Any = None) -> int:
    """Run the command; returns the exit status (never raises for user errors)."""
    stdout = stdout or sys.stdout
    stdin = stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or usage error (2 -> EX_USAGE)
        code = e.code if isinstance(e.code, int) else 1
        return exits.OK if code == 0 else exits.USAGE
    try:
        cfg = config.load(args.config)
        if args.data_dir:
            cfg = cfg.with_data_dir(args.data_dir)
    except ConfigError as e:
        print(f"mailsuite-admin: {e}", file=sys.stderr)
        return exits.CONFIG
    env = AdminEnv(cfg, stdin=stdin, stdout=stdout)
    try:
        return int(args.handler(args, env))
    except AdminError as e:
        print(f"mailsuite-admin: {e.message}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("mailsuite-admin: interrupted", file=sys.stderr)
        return exits.TEMPFAIL
    finally:
        env.close()


def version() -> str:
    return __version__


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
