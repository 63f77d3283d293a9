"""``--demo``: seed a demonstration account on an empty server.

On a directory with no users at all, creates the domain ``example.test`` and
the account ``demo@example.test`` with password ``demo``, and copies the
messages of ``maildir-sample/`` (file names, and so flags, preserved) into its
INBOX.  Anything already there is left alone: the demo never overwrites an
administrator's data.  Runs once at start-up, before the reactor.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from mailsuite.users.passwords import PasswordHasher

log = Logger()

DEMO_DOMAIN = "example.test"
DEMO_ADDRESS = "demo@example.test"
DEMO_PASSWORD = "demo"


def find_sample(candidates: list[Path]) -> Path | None:
    for path in candidates:
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return path
    return None


def seed_demo(context: Any, sample: Path) -> bool:
    """Create the demo account if the directory is empty; True if it did."""
    directory = context.directory
    if directory.list_users():
        log.info("--demo: the directory already has users; nothing seeded")
        return False
    if not directory.is_local_domain(DEMO_DOMAIN):
        directory.add_domain(DEMO_DOMAIN)
    hasher = PasswordHasher.from_config(context.config.auth)
    directory.add_user(DEMO_ADDRESS, hasher.hash(DEMO_PASSWORD))
    account = context.store.account(DEMO_ADDRESS)
    account.ensure_created()
    source = find_sample([sample, Path.cwd() / "maildir-sample"])
    copied = 0
    if source is not None:
        inbox = context.config.data_dir / "mail" / DEMO_DOMAIN / "demo"
        for sub in ("cur", "new"):
            for f in sorted((source / sub).glob("*")) if (source / sub).is_dir() else []:
                if f.is_file() and not f.name.startswith("."):
                    shutil.copy2(f, inbox / sub / f.name)
                    copied += 1
            # number the read mail (older) before the unread, as it arrived
            account.open("INBOX").sync()
    log.warn(
        "--demo: created {address} (password as in README.md) with {n} sample messages. "
        "This account exists for demonstration only; delete it before real use.",
        address=DEMO_ADDRESS,
        n=copied,
    )
    return True
