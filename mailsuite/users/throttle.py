"""Login throttling shared by every protocol.

Failed logins are counted per *source*: the client's IPv4 address (/32) or
its IPv6 /64 network (one customer usually holds a whole /64).  Within
``auth.throttle_window`` seconds of the oldest counted failure:

* each failed attempt is answered only after a delay that starts at
  ``throttle_base_delay`` and doubles with every further failure, up to
  ``throttle_max_delay`` (:meth:`LoginThrottle.failed` returns it and
  :meth:`LoginThrottle.wait` sleeps on the injected clock);
* after ``throttle_max_failures`` failures, :meth:`LoginThrottle.check`
  refuses every attempt from that source with ``MailError(THROTTLED)`` until
  the failures age out of the window.

Accounts are never locked: counting is by source only, so an owner
connecting from anywhere else is unaffected by an attack on their address.
A successful login forgets the failures *of that user* from that source
(a mistyped password, then the right one); others' failures stay.

Every decision is logged through twisted.logger.  State lives in memory and
on the reactor thread only; it is bounded (old sources are pruned).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import deque
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from mailsuite.config import AuthConfig
from mailsuite.errors import ErrorKind, MailError

log = Logger(namespace="mailsuite.users.throttle")

#: At most this many sources are tracked; the least recently failing go first.
MAX_SOURCES = 100_000


def source_key(peer: str) -> str:
    """The throttling key of a client address: IPv4 as is, IPv6 as its /64,
    IPv4-mapped IPv6 as the IPv4 address; anything else (a UNIX socket) as given."""
    try:
        ip = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return peer
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _user_tag(username: str) -> str:
    # Only used to match a later success by the same user; not stored in logs.
    return hashlib.sha256(username.strip().lower().encode("utf-8", "replace")).hexdigest()[:16]


class LoginThrottle:
    """Per-source failure counting with growing delays and refusal.

    ``clock`` is an IReactorTime (``seconds``, ``callLater``); tests pass
    :class:`twisted.internet.task.Clock`.
    """

    def __init__(self, clock: Any, config: AuthConfig) -> None:
        self._clock = clock
        self._config = config
        # source -> deque of (time, user tag), oldest first
        self._failures: dict[str, deque[tuple[float, str]]] = {}

    def _recent(self, key: str) -> deque[tuple[float, str]] | None:
        entries = self._failures.get(key)
        if entries is None:
            return None
        horizon = self._clock.seconds() - self._config.throttle_window
        while entries and entries[0][0] <= horizon:
            entries.popleft()
        if not entries:
            del self._failures[key]
            return None
        return entries

    def failures(self, peer: str) -> int:
        """How many failures from ``peer``'s source count now."""
        entries = self._recent(source_key(peer))
        return len(entries) if entries else 0

    def check(self, peer: str, protocol: str = "") -> None:
        """Raise ``MailError(THROTTLED)`` if ``peer``'s source must wait."""
        key = source_key(peer)
        entries = self._recent(key)
        if entries and len(entries) >= self._config.throttle_max_failures:
            retry = entries[0][0] + self._config.throttle_window - self._clock.seconds()
            log.info(
                "throttle: refused {protocol} login from {source}: {count} failures,"
                " retry in {retry:.0f}s",
                protocol=protocol,
                source=key,
                count=len(entries),
                retry=retry,
            )
            raise MailError(ErrorKind.THROTTLED)

    def failed(self, peer: str, username: str, protocol: str = "") -> float:
        """Count a failed login; returns the delay (seconds) before replying."""
        key = source_key(peer)
        entries = self._recent(key)
        if entries is None:
            entries = self._failures[key] = deque()
            self._prune()
        else:  # keep the dict ordered by latest failure for pruning
            self._failures[key] = self._failures.pop(key)
        entries.append((self._clock.seconds(), _user_tag(username)))
        count = len(entries)
        base, cap = self._config.throttle_base_delay, self._config.throttle_max_delay
        delay = min(base * 2 ** min(count - 1, 32), cap) if base > 0 else 0.0
        log.info(
            "throttle: failed {protocol} login from {source} ({count} in window), delay {delay}s",
            protocol=protocol,
            source=key,
            count=count,
            delay=delay,
        )
        return delay

    def succeeded(self, peer: str, username: str, protocol: str = "") -> None:
        """Forget the failures of ``username`` from ``peer``'s source."""
        key = source_key(peer)
        entries = self._recent(key)
        if not entries:
            return
        tag = _user_tag(username)
        kept = deque(e for e in entries if e[1] != tag)
        if len(kept) != len(entries):
            log.info(
                "throttle: {protocol} login from {source} succeeded; {forgotten} of its"
                " failures forgotten",
                protocol=protocol,
                source=key,
                forgotten=len(entries) - len(kept),
            )
        if kept:
            self._failures[key] = kept
        else:
            del self._failures[key]

    def wait(self, delay: float) -> Deferred[None]:
        """A Deferred firing after ``delay`` seconds on the injected clock."""
        return task.deferLater(self._clock, delay, lambda: None)

    def _prune(self) -> None:
        while len(self._failures) > MAX_SOURCES:
            oldest = next(iter(self._failures))
            del self._failures[oldest]
