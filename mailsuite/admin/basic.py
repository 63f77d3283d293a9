"""``version`` and ``check-config``."""

from __future__ import annotations

import argparse
from typing import Any

from mailsuite import __version__
from mailsuite.admin import exits
from mailsuite.admin.env import AdminEnv


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("version", help="print the mailsuite version")
    p.set_defaults(handler=cmd_version)
    p = subparsers.add_parser(
        "check-config", help="validate the configuration and print where it came from"
    )
    p.set_defaults(handler=cmd_check_config)


def cmd_version(args: argparse.Namespace, env: AdminEnv) -> int:
    env.out(f"mailsuite {__version__}")
    return exits.OK


def cmd_check_config(args: argparse.Namespace, env: AdminEnv) -> int:
    """The config was already loaded and validated by ``main``; report it."""
    source = env.config.source or "embedded defaults"
    env.out(f"configuration OK ({source}); data dir {env.config.data_dir}")
    return exits.OK
