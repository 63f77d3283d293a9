"""What the user, domain, alias and deliver commands share.

* :func:`directory` opens ``<data>/users.sqlite`` once per invocation
  through ``env.resource("directory", ...)``;
* :func:`store` opens the Maildir store (``<data>/mail``) the same way, or
  returns None when the storage package is not installed/importable;
* :func:`mail_errors` turns a ``MailError`` into a one-line
  :class:`AdminError` with a sysexits code;
* :func:`new_password` asks twice on the terminal (``getpass``) or reads
  one line from stdin (``--password-stdin``) -- never from an argument.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mailsuite.admin import exits
from mailsuite.admin.env import AdminEnv, AdminError
from mailsuite.errors import ErrorKind, MailError
from mailsuite.users.directory import SQLiteDirectory
from mailsuite.users.passwords import PasswordHasher

_EXIT_CODES = {
    ErrorKind.BAD_ADDRESS: exits.DATAERR,
    ErrorKind.BAD_INPUT: exits.DATAERR,
    ErrorKind.ALIAS_LOOP: exits.DATAERR,
    ErrorKind.ALREADY_EXISTS: exits.CANTCREAT,
    ErrorKind.NONEXISTENT: exits.NOUSER,
    ErrorKind.UNKNOWN_MAILBOX: exits.NOUSER,
    ErrorKind.TEMPORARY: exits.TEMPFAIL,
    ErrorKind.IN_USE: exits.TEMPFAIL,
}


def admin_error(e: MailError) -> AdminError:
    """One line for an administrator: the text, and the detail for I/O trouble."""
    text = e.public_text
    if e.detail and e.kind is ErrorKind.TEMPORARY:
        text = f"{text}: {e.detail}"
    return AdminError(text, _EXIT_CODES.get(e.kind, exits.SOFTWARE))


@contextmanager
def mail_errors() -> Iterator[None]:
    """Re-raise a MailError from the block as an AdminError."""
    try:
        yield
    except MailError as e:
        raise admin_error(e)


def directory(env: AdminEnv) -> SQLiteDirectory:
    def build() -> SQLiteDirectory:
        data = env.config.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AdminError(f"cannot create data directory {data}: {e.strerror}", exits.CANTCREAT)
        with mail_errors():
            return SQLiteDirectory(data / "users.sqlite", env.config.users)

    result: SQLiteDirectory = env.resource("directory", build)
    return result


def store(env: AdminEnv) -> Any | None:
    """The MaildirStore of ``<data>/mail``, or None if storage is unavailable."""

    def build() -> Any:
        try:
            from mailsuite.storage.store import MaildirStore
        except ImportError:
            return None
        users = directory(env)

        def quota_lookup(address: str) -> tuple[int, int]:
            user = users.get_user(address)
            return (user.quota_bytes, user.quota_messages) if user else (0, 0)

        return MaildirStore(env.config.data_dir / "mail", quota_lookup=quota_lookup)

    return env.resource("store", build)


def mail_root(env: AdminEnv) -> Path:
    return env.config.data_dir / "mail"


def hasher(env: AdminEnv) -> PasswordHasher:
    result: PasswordHasher = env.resource(
        "hasher", lambda: PasswordHasher.from_config(env.config.auth)
    )
    return result


def add_password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )


def new_password(args: argparse.Namespace, env: AdminEnv) -> str:
    """The new password from stdin or from a prompt asked twice."""
    if args.password_stdin:
        line = env.stdin.readline()
        if isinstance(line, bytes):
            line = line.decode("utf-8", "surrogateescape")
        password = str(line).rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("New password: ")
            if getpass.getpass("Repeat password: ") != password:
                raise AdminError("the passwords do not match", exits.DATAERR)
        except EOFError:
            raise AdminError(
                "no password given (no terminal to prompt on: use --password-stdin)",
                exits.USAGE,
            )
    if not password:
        raise AdminError("the password is empty", exits.DATAERR)
    if len(password) > 1024:
        raise AdminError("the password is longer than 1024 characters", exits.DATAERR)
    return password


def confirm(env: AdminEnv, question: str) -> bool:
    """Ask ``question`` on stdout and read a yes/no answer from stdin."""
    print(f"{question} [y/N] ", end="", file=env.stdout, flush=True)
    answer = env.stdin.readline()
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return str(answer).strip().lower() in ("y", "yes")


def ensure_maildir(env: AdminEnv, address: str) -> bool:
    """Create the account's folders if the store is available; True if done."""
    s = store(env)
    if s is None:
        return False
    try:
        s.account(address).ensure_created()
    except MailError as e:
        raise admin_error(e)
    except OSError as e:
        raise AdminError(f"cannot create the maildir of {address}: {e.strerror}", exits.CANTCREAT)
    return True
