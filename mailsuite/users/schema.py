"""The SQLite schema of the user directory and its migrations.

``schema_version`` holds one row with the version of the schema in the
file.  :func:`migrate` brings a file up to :data:`CURRENT_VERSION` in one
``BEGIN IMMEDIATE`` transaction (so two processes opening a new file at the
same time cannot both migrate it) and refuses a file written by a newer
mailsuite.  A migration is a list of SQL statements; add new ones at the
end of :data:`MIGRATIONS` and never edit a released one.
"""

from __future__ import annotations

import sqlite3

from mailsuite.errors import ErrorKind, MailError

MIGRATIONS: list[list[str]] = [
    # 1: domains, users, aliases
    [
        """CREATE TABLE domains (
               name TEXT PRIMARY KEY,          -- IDNA A-label, lower case
               created INTEGER NOT NULL        -- Unix time
           )""",
        """CREATE TABLE users (
               address TEXT PRIMARY KEY,       -- normalised localpart@domain
               domain TEXT NOT NULL REFERENCES domains(name),
               password_hash TEXT NOT NULL,
               quota_bytes INTEGER NOT NULL DEFAULT 0,
               quota_messages INTEGER NOT NULL DEFAULT 0,
               enabled INTEGER NOT NULL DEFAULT 1,
               created INTEGER NOT NULL
           )""",
        "CREATE INDEX users_domain ON users(domain)",
        """CREATE TABLE aliases (
               source TEXT NOT NULL,           -- localpart@domain, or @domain (catch-all)
               domain TEXT NOT NULL REFERENCES domains(name),
               target TEXT NOT NULL,           -- an address, local or remote
               created INTEGER NOT NULL,
               PRIMARY KEY (source, target)
           )""",
        "CREATE INDEX aliases_target ON aliases(target)",
        "CREATE INDEX aliases_domain ON aliases(domain)",
    ],
]

CURRENT_VERSION = len(MIGRATIONS)


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open file (0 for a new, empty file)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Apply the missing migrations; returns the version before migrating.

    ``conn`` must be in autocommit mode (``isolation_level=None``).  Raises
    ``MailError(TEMPORARY)`` for a file from a newer mailsuite, naming
    ``where`` in the detail.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = read_version(conn)
        if before > CURRENT_VERSION:
            raise MailError(
                ErrorKind.TEMPORARY,
                detail=f"{where}: schema version {before} is newer than this mailsuite "
                f"({CURRENT_VERSION}); upgrade mailsuite",
            )
        if before == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (0)")
        for version in range(before + 1, CURRENT_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("UPDATE schema_version SET version = ?", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before
