"""The user directory in one SQLite file (DESIGN.md §2 "User directory").

:class:`SQLiteDirectory` implements :class:`mailsuite.interfaces.Directory`
and the operations ``mailsuite-admin`` needs.  Contracts:

* Every method is blocking; protocol code calls it through the runner.
  One connection (``check_same_thread=False``) is shared by the pool
  threads and serialised by a lock; SQLite runs in WAL mode so the server
  and ``mailsuite-admin`` read and write the same file concurrently.
* Nothing is cached between calls: each call reads the file, so changes by
  another process are seen at once.
* Addresses are normalised by :mod:`mailsuite.users.addresses`: domains as
  lower-case IDNA A-labels; local parts lower-cased unless
  ``users.localpart_case_sensitive``.
* Errors are ``MailError``: BAD_ADDRESS, NONEXISTENT (unknown domain, user
  or alias in an admin operation), ALREADY_EXISTS, ALIAS_LOOP,
  UNKNOWN_MAILBOX (resolve), TEMPORARY (the file is locked or unreadable;
  the detail names the cause).  Texts of admin operations name the address
  because only administrators see them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from mailsuite.config import UsersConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import LocalTarget, Resolution, UserRecord
from mailsuite.users import addresses, schema
from mailsuite.users.resolver import AliasResolver

log = Logger(namespace="mailsuite.users.directory")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the admin command lists it (no password hash)."""

    address: str
    enabled: bool
    quota_bytes: int
    quota_messages: int
    created: int

    def record(self) -> UserRecord:
        return UserRecord(self.address, self.enabled, self.quota_bytes, self.quota_messages)


@dataclass(frozen=True, slots=True)
class DomainInfo:
    name: str
    created: int
    users: int
    aliases: int


@dataclass(frozen=True, slots=True)
class AliasInfo:
    source: str  # localpart@domain or @domain
    targets: tuple[str, ...]


_USER_COLUMNS = "address, enabled, quota_bytes, quota_messages, created"
_DOMAIN_AND_USER = (
    "SELECT EXISTS(SELECT 1 FROM domains WHERE name = ?), "
    "EXISTS(SELECT 1 FROM users WHERE address = ?)"
)


def _user(row: Any) -> UserInfo:
    return UserInfo(row[0], bool(row[1]), int(row[2]), int(row[3]), int(row[4]))


class SQLiteDirectory:
    """Domains, users and aliases in ``path`` (created and migrated on open)."""

    def __init__(
        self, path: Path, config: UsersConfig, now: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.config = config
        self._now = now
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=FULL")
            schema.migrate(self._conn, str(self.path))
        except sqlite3.Error as e:
            raise MailError(ErrorKind.TEMPORARY, detail=f"{self.path}: {e}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing ----------------------------------------------------------
    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot (reads) or an immediate write transaction."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as e:
                raise MailError(ErrorKind.TEMPORARY, detail=f"{self.path}: {e}")
            try:
                yield self._conn
            except sqlite3.Error as e:
                self._conn.execute("ROLLBACK")
                raise MailError(ErrorKind.TEMPORARY, detail=f"{self.path}: {e}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as e:
                    self._conn.execute("ROLLBACK")
                    raise MailError(ErrorKind.TEMPORARY, detail=f"{self.path}: {e}")

    def _address(self, address: str) -> str:
        return addresses.normalise(address, self.config.localpart_case_sensitive)

    def _resolver(self, conn: sqlite3.Connection) -> AliasResolver:
        return AliasResolver(conn, self.config)

    @staticmethod
    def _domain_exists(conn: sqlite3.Connection, domain: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone() is not None
        )

    def _require_domain(self, conn: sqlite3.Connection, domain: str) -> None:
        if not self._domain_exists(conn, domain):
            raise MailError(ErrorKind.NONEXISTENT, f"domain {domain} is not a local domain")

    # -- interfaces.Directory ----------------------------------------------
    def is_local_domain(self, domain: str) -> bool:
        try:
            name = addresses.normalise_domain(domain)
        except MailError:
            return False
        with self._transaction() as conn:
            return self._domain_exists(conn, name)

    def resolve(self, address: str) -> Resolution:
        """Where mail for ``address`` goes (see :class:`AliasResolver`)."""
        local, domain = addresses.split(address)
        domain = addresses.normalise_domain(domain)
        with self._transaction() as conn:
            return self._resolver(conn).resolve(f"{local}@{domain}")

    def resolve_local(self, address: str) -> Resolution | None:
        """``None`` if the domain of ``address`` is not a local domain (as
        :meth:`is_local_domain`), else :meth:`resolve` (the RCPT path).

        The common case, a user's own address, is one statement (its own
        consistent snapshot); anything else is resolved in one read
        transaction that checks the domain again.
        """
        local, domain = addresses.split(address)
        try:
            domain = addresses.normalise_domain(domain)
        except MailError:
            return None
        try:
            user = f"{addresses.normalise_localpart(local, self.config.localpart_case_sensitive)}@{domain}"
        except MailError:
            user = ""  # resolve() raises the right error for it
        if user:
            with self._lock:
                try:
                    local_domain, is_user = self._conn.execute(
                        _DOMAIN_AND_USER, (domain, user)
                    ).fetchone()
                except sqlite3.Error as e:
                    raise MailError(ErrorKind.TEMPORARY, detail=f"{self.path}: {e}")
            if not local_domain:
                return None
            if is_user:
                return Resolution((LocalTarget(user),))
        with self._transaction() as conn:
            if not self._domain_exists(conn, domain):
                return None
            resolver = self._resolver(conn)
            resolver.known_local(domain)
            return resolver.resolve(f"{local}@{domain}")

    def get_user(self, address: str) -> UserRecord | None:
        found = self.get_credentials(address)
        return found[0] if found else None

    def sender_addresses(self, address: str) -> set[str]:
        try:
            addr = self._address(address)
        except MailError:
            return set()
        with self._transaction() as conn:
            return self._resolver(conn).sources_of(addr)

    # -- authentication support --------------------------------------------
    def get_credentials(self, address: str) -> tuple[UserRecord, str] | None:
        """``(record, password_hash)`` of a user, or None (also for a malformed address)."""
        try:
            addr = self._address(address)
        except MailError:
            return None
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE address = ?", (addr,)
            ).fetchone()
        if row is None:
            return None
        return _user(row).record(), str(row[5])

    def get_password_hash(self, address: str) -> str | None:
        found = self.get_credentials(address)
        return found[1] if found else None

    def replace_password_hash(self, address: str, old: str, new: str) -> bool:
        """Set ``new`` only if the stored hash is still ``old`` (a rehash must
        not undo a password change made meanwhile); True if replaced."""
        addr = self._address(address)
        with self._transaction(write=True) as conn:
            cur = conn.execute(
                "UPDATE users SET password_hash = ? WHERE address = ? AND password_hash = ?",
                (new, addr, old),
            )
            return cur.rowcount == 1

    # -- domains -----------------------------------------------------------
    def add_domain(self, domain: str) -> str:
        """Add a local domain; returns its stored (A-label) name."""
        name = addresses.normalise_domain(domain)
        with self._transaction(write=True) as conn:
            if self._domain_exists(conn, name):
                raise MailError(ErrorKind.ALREADY_EXISTS, f"domain {name} already exists")
            conn.execute("INSERT INTO domains VALUES (?, ?)", (name, int(self._now())))
        return name

    def delete_domain(self, domain: str) -> None:
        """Remove an empty domain; raises ALREADY_EXISTS if users or aliases remain."""
        name = addresses.normalise_domain(domain)
        with self._transaction(write=True) as conn:
            self._require_domain(conn, name)
            users = conn.execute("SELECT count(*) FROM users WHERE domain = ?", (name,))
            aliases = conn.execute("SELECT count(*) FROM aliases WHERE domain = ?", (name,))
            n_users, n_aliases = users.fetchone()[0], aliases.fetchone()[0]
            if n_users or n_aliases:
                raise MailError(
                    ErrorKind.ALREADY_EXISTS,
                    f"domain {name} still has {n_users} user(s) and {n_aliases} alias(es)",
                )
            conn.execute("DELETE FROM domains WHERE name = ?", (name,))

    def list_domains(self) -> list[DomainInfo]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT name, created,"
                " (SELECT count(*) FROM users u WHERE u.domain = d.name),"
                " (SELECT count(DISTINCT source) FROM aliases a WHERE a.domain = d.name)"
                " FROM domains d ORDER BY name"
            ).fetchall()
        return [DomainInfo(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]

    # -- users -------------------------------------------------------------
    def add_user(
        self,
        address: str,
        password_hash: str,
        quota_bytes: int = 0,
        quota_messages: int = 0,
        enabled: bool = True,
    ) -> str:
        """Create a user in an existing domain; returns the normalised address."""
        addr = self._address(address)
        domain = addresses.domain_of(addr)
        if "/" in addr:  # the local part names the account's maildir
            raise MailError(ErrorKind.BAD_ADDRESS, "'/' is not allowed in an account name")
        with self._transaction(write=True) as conn:
            self._require_domain(conn, domain)
            if conn.execute("SELECT 1 FROM users WHERE address = ?", (addr,)).fetchone():
                raise MailError(ErrorKind.ALREADY_EXISTS, f"user {addr} already exists")
            if conn.execute("SELECT 1 FROM aliases WHERE source = ?", (addr,)).fetchone():
                raise MailError(ErrorKind.ALREADY_EXISTS, f"{addr} is an alias")
            conn.execute(
                "INSERT INTO users (address, domain, password_hash, quota_bytes,"
                " quota_messages, enabled, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    addr,
                    domain,
                    password_hash,
                    quota_bytes,
                    quota_messages,
                    int(enabled),
                    int(self._now()),
                ),
            )
        return addr

    def delete_user(self, address: str) -> int:
        """Remove a user and every alias target naming it; returns how many
        alias targets were removed.  The maildir is not touched."""
        addr = self._address(address)
        with self._transaction(write=True) as conn:
            if conn.execute("DELETE FROM users WHERE address = ?", (addr,)).rowcount != 1:
                raise MailError(ErrorKind.NONEXISTENT, f"user {addr} does not exist")
            return conn.execute("DELETE FROM aliases WHERE target = ?", (addr,)).rowcount

    def get_user_info(self, address: str) -> UserInfo | None:
        addr = self._address(address)
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE address = ?", (addr,)
            ).fetchone()
        return _user(row) if row else None

    def list_users(self, domain: str | None = None) -> list[UserInfo]:
        with self._transaction() as conn:
            if domain is None:
                rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY domain, address")
            else:
                name = addresses.normalise_domain(domain)
                self._require_domain(conn, name)
                rows = conn.execute(
                    f"SELECT {_USER_COLUMNS} FROM users WHERE domain = ? ORDER BY address",
                    (name,),
                )
            return [_user(r) for r in rows.fetchall()]

    def _update_user(self, address: str, assignments: str, values: tuple[Any, ...]) -> None:
        addr = self._address(address)
        with self._transaction(write=True) as conn:
            cur = conn.execute(
                f"UPDATE users SET {assignments} WHERE address = ?", (*values, addr)
            )
            if cur.rowcount != 1:
                raise MailError(ErrorKind.NONEXISTENT, f"user {addr} does not exist")

    def set_password_hash(self, address: str, password_hash: str) -> None:
        self._update_user(address, "password_hash = ?", (password_hash,))

    def set_enabled(self, address: str, enabled: bool) -> None:
        self._update_user(address, "enabled = ?", (int(enabled),))

    def set_quota(self, address: str, quota_bytes: int, quota_messages: int) -> None:
        """Set both limits (0 = unlimited)."""
        if quota_bytes < 0 or quota_messages < 0:
            raise MailError(ErrorKind.BAD_INPUT, "quota must be >= 0")
        self._update_user(
            address, "quota_bytes = ?, quota_messages = ?", (quota_bytes, quota_messages)
        )

    # -- aliases -----------------------------------------------------------
    def _alias_target(self, conn: sqlite3.Connection, target: str) -> str:
        """Normalise a target: local-domain rules for local domains; a remote
        address keeps the case of its local part."""
        local, domain = addresses.split(target)
        domain = addresses.normalise_domain(domain)
        if self._domain_exists(conn, domain):
            return self._address(f"{local}@{domain}")
        return f"{addresses.normalise_localpart(local, case_sensitive=True)}@{domain}"

    def add_alias(self, source: str, targets: list[str]) -> AliasInfo:
        """Add ``targets`` to the alias ``source`` (created if new).

        ``source`` is ``local@domain`` or ``@domain`` (catch-all) in a local
        domain and may not be a user.  Local targets must resolve; a target
        that would make mail loop raises ALIAS_LOOP.  Nothing is stored if
        any check fails.
        """
        src = addresses.normalise_alias_source(source, self.config.localpart_case_sensitive)
        if not targets:
            raise MailError(ErrorKind.BAD_INPUT, "an alias needs at least one target")
        domain = addresses.domain_of(src)
        with self._transaction(write=True) as conn:
            self._require_domain(conn, domain)
            if conn.execute("SELECT 1 FROM users WHERE address = ?", (src,)).fetchone():
                raise MailError(ErrorKind.ALREADY_EXISTS, f"{src} is a user")
            normalised = [self._alias_target(conn, t) for t in targets]
            now = int(self._now())
            for target in normalised:
                conn.execute(
                    "INSERT OR IGNORE INTO aliases VALUES (?, ?, ?, ?)", (src, domain, target, now)
                )
            self._resolver(conn).check_alias(src, normalised)
            rows = conn.execute(
                "SELECT target FROM aliases WHERE source = ? ORDER BY target", (src,)
            ).fetchall()
        return AliasInfo(src, tuple(r[0] for r in rows))

    def delete_alias(self, source: str, targets: list[str] | None = None) -> int:
        """Remove some targets of an alias (or all of it); returns rows removed.

        Removing a whole alias also removes it as a target of other aliases.
        """
        src = addresses.normalise_alias_source(source, self.config.localpart_case_sensitive)
        with self._transaction(write=True) as conn:
            if not conn.execute("SELECT 1 FROM aliases WHERE source = ?", (src,)).fetchone():
                raise MailError(ErrorKind.NONEXISTENT, f"alias {src} does not exist")
            if not targets:
                removed = conn.execute("DELETE FROM aliases WHERE source = ?", (src,)).rowcount
                conn.execute("DELETE FROM aliases WHERE target = ?", (src,))
                return removed
            removed = 0
            for target in targets:
                norm = self._alias_target(conn, target)
                cur = conn.execute(
                    "DELETE FROM aliases WHERE source = ? AND target = ?", (src, norm)
                )
                if cur.rowcount == 0:
                    raise MailError(ErrorKind.NONEXISTENT, f"alias {src} has no target {norm}")
                removed += cur.rowcount
            return removed

    def list_aliases(self, domain: str | None = None) -> list[AliasInfo]:
        with self._transaction() as conn:
            if domain is None:
                rows = conn.execute(
                    "SELECT source, target FROM aliases ORDER BY domain, source, target"
                ).fetchall()
            else:
                name = addresses.normalise_domain(domain)
                self._require_domain(conn, name)
                rows = conn.execute(
                    "SELECT source, target FROM aliases WHERE domain = ? ORDER BY source, target",
                    (name,),
                ).fetchall()
        grouped: dict[str, list[str]] = {}
        for source, target in rows:
            grouped.setdefault(source, []).append(target)
        return [AliasInfo(s, tuple(t)) for s, t in grouped.items()]
