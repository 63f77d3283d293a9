"""Alias expansion over an open directory transaction.

Resolution of ``local@domain`` in a local domain, first match wins:

1. a user with that address -> the user's INBOX;
2. an alias with that address -> the union of its targets, each resolved
   again (recursively, so aliases of aliases work);
3. with subaddressing on (``users.subaddress_separator``), ``local+tag``:
   the user or alias ``local`` (RFC 5233);
4. the catch-all alias ``@domain``;
5. otherwise UNKNOWN_MAILBOX.

An address outside the local domains resolves to itself as a remote target.
A target seen again on the path being expanded, or an expansion deeper than
``users.alias_max_depth``, raises ALIAS_LOOP; a target that resolves to
nothing is skipped (and logged) as long as another target delivers.
"""

from __future__ import annotations

import sqlite3

from twisted.logger import Logger

from mailsuite.config import UsersConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import LocalTarget, Resolution
from mailsuite.users import addresses

log = Logger(namespace="mailsuite.users.resolver")


class AliasResolver:
    """Resolves addresses with the queries of one transaction (``conn``)."""

    def __init__(self, conn: sqlite3.Connection, config: UsersConfig) -> None:
        self._conn = conn
        self._config = config
        self._local: dict[str, bool] = {}  # domain -> local?, within this transaction

    def known_local(self, domain: str) -> None:
        """The caller checked in this transaction that ``domain`` is local."""
        self._local[domain] = True

    def _is_local(self, domain: str) -> bool:
        known = self._local.get(domain)
        if known is None:
            row = self._conn.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone()
            known = self._local[domain] = row is not None
        return known

    def _is_user(self, address: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM users WHERE address = ?", (address,)).fetchone()
        return row is not None

    def _targets(self, source: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT target FROM aliases WHERE source = ? ORDER BY target", (source,)
        ).fetchall()
        return [r[0] for r in rows]

    def resolve(self, address: str) -> Resolution:
        """Resolve ``address`` (domain already normalised)."""
        local: dict[str, None] = {}
        remote: dict[str, None] = {}
        self._expand(address, (), local, remote)
        if not local and not remote:
            raise MailError(ErrorKind.UNKNOWN_MAILBOX)
        return Resolution(tuple(LocalTarget(a) for a in local), tuple(remote))

    def _expand(
        self, address: str, path: tuple[str, ...], local: dict[str, None], remote: dict[str, None]
    ) -> None:
        """Add where ``address`` goes to ``local``/``remote`` (ordered sets)."""
        lp, domain = addresses.split(address)
        domain = addresses.normalise_domain(domain)
        if not self._is_local(domain):
            remote[f"{lp}@{domain}"] = None
            return
        addr = (
            f"{addresses.normalise_localpart(lp, self._config.localpart_case_sensitive)}@{domain}"
        )
        if addr in path or len(path) >= self._config.alias_max_depth:
            log.warn("alias loop: {path}", path=" -> ".join((*path, addr)))
            raise MailError(ErrorKind.ALIAS_LOOP, detail=" -> ".join((*path, addr)))
        if self._is_user(addr):
            local[addr] = None
            return
        targets = self._targets(addr)
        if not targets:
            base = addresses.strip_subaddress(
                addr.rpartition("@")[0], self._config.subaddress_separator
            )
            if base is not None:
                base_addr = f"{base}@{domain}"
                if self._is_user(base_addr):
                    local[base_addr] = None
                    return
                targets = self._targets(base_addr)
        if not targets:
            targets = self._targets("@" + domain)
        if not targets:
            raise MailError(ErrorKind.UNKNOWN_MAILBOX)
        delivered = False
        for target in targets:
            try:
                self._expand(target, (*path, addr), local, remote)
            except MailError as e:
                if e.kind is not ErrorKind.UNKNOWN_MAILBOX:
                    raise
                log.warn(
                    "alias {alias}: target {target} does not exist", alias=addr, target=target
                )
                continue
            delivered = True
        if not delivered:
            raise MailError(ErrorKind.UNKNOWN_MAILBOX)

    def check_alias(self, source: str, targets: list[str]) -> None:
        """Validate new targets of ``source`` (inside the write transaction
        that added them): every local target must resolve and none may loop.

        Raises NONEXISTENT naming a target that resolves to nothing, or
        ALIAS_LOOP naming the loop.
        """
        for target in targets:
            try:
                self._expand(target, (source,), {}, {})
            except MailError as e:
                if e.kind is ErrorKind.UNKNOWN_MAILBOX:
                    raise MailError(ErrorKind.NONEXISTENT, f"alias target {target} does not exist")
                if e.kind is ErrorKind.ALIAS_LOOP:
                    raise MailError(ErrorKind.ALIAS_LOOP, f"alias loop: {e.detail}")
                raise

    def sources_of(self, address: str) -> set[str]:
        """``address`` plus every alias (not catch-all) that reaches it,
        directly or through other aliases, up to ``alias_max_depth`` levels."""
        found = {address}
        frontier = [address]
        for _ in range(self._config.alias_max_depth):
            following: list[str] = []
            for target in frontier:
                rows = self._conn.execute(
                    "SELECT source FROM aliases WHERE target = ?", (target,)
                ).fetchall()
                for (source,) in rows:
                    if not source.startswith("@") and source not in found:
                        found.add(source)
                        following.append(source)
            if not following:
                break
            frontier = following
        return found
