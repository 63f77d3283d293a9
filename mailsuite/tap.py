"""``twistd mailsuite``: command-line options and the service maker.

Configuration errors end the process before anything starts: one line on
stderr naming the file, key and what is allowed, exit status 78 (EX_CONFIG),
no traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application import service
from twisted.python import usage

from mailsuite import config as config_mod
from mailsuite.errors import ConfigError

EX_CONFIG = 78


class Options(usage.Options):
    synopsis = "[-c FILE] [--data-dir DIR] [--demo]"
    longdesc = (
        "Run the mailsuite mail server (SMTP, submission, POP3, IMAP). Without a "
        "config file the embedded defaults apply: data in ./mailsuite-data, "
        "listeners on 127.0.0.1 ports 2525, 2587, 2465, 2110, 2995, 2143, 2993."
    )
    optFlags = [["demo", None, "seed the demonstration account demo@example.test / demo"]]
    optParameters = [
        ["config", "c", None, "TOML configuration file (default: embedded defaults)"],
        ["data-dir", None, None, "data directory (overrides server.data_dir)"],
    ]

    def postOptions(self) -> None:
        try:
            cfg = config_mod.load(self["config"])
            if self["data-dir"]:
                cfg = cfg.with_data_dir(self["data-dir"])
        except ConfigError as e:
            fail(str(e))
        self["parsed_config"] = cfg


def fail(message: str) -> None:
    """One clear line, then exit with EX_CONFIG."""
    sys.stderr.write(f"mailsuite: {message}\n")
    sys.stderr.flush()
    raise SystemExit(EX_CONFIG)


def makeService(options: Options) -> service.IService:
    from twisted.internet import reactor

    from mailsuite.service import make_service

    cfg: Any = options["parsed_config"]
    try:
        top: Any = make_service(
            cfg, reactor, demo=bool(options["demo"]), config_path=options["config"]
        )
        return top  # type: ignore[no-any-return]
    except ConfigError as e:
        fail(str(e))
        raise  # unreachable
