"""Where mail for a domain goes: MX lookup with ``twisted.names``.

RFC 5321 §5.1: look up the MX records of the domain and try the hosts in
order of preference (equal preferences shuffled); with no MX records the
domain itself is the only host (implicit MX, A/AAAA).  RFC 7505: a single MX
with the root as exchange ("null MX") means the domain accepts no mail —
a permanent failure, status 5.1.10.  A domain that does not exist
(NXDOMAIN) fails permanently (5.1.2); DNS errors and timeouts are temporary
(4.4.3).  Address literals (``[192.0.2.1]``, ``[IPv6:…]``) need no lookup.

:func:`make_resolver` builds the resolver: ``queue.resolver = "host:port"``
sends every query to that server (tests run one on loopback), otherwise the
name servers of ``/etc/resolv.conf`` (read at start) are used.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.names import client, dns, error


class DestinationError(Exception):
    """No host can be tried: ``permanent`` decides bounce vs retry."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class MXHost:
    name: str
    preference: int


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` -> (host, port); raises ValueError."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = int(port_text)
    else:
        host, port = value, default_port
    if not host or not 0 < port < 65536:
        raise ValueError(value)
    return host, port


def system_nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The ``nameserver`` lines of resolv.conf (127.0.0.1 if there are none)."""
    servers = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    servers.append((parts[1].split("%")[0], 53))
    except OSError:
        pass
    return servers or [("127.0.0.1", 53)]


def make_resolver(spec: str, reactor: Any) -> Any:
    """An IResolver for ``queue.resolver``: that "host:port", or the servers
    of /etc/resolv.conf read once now (unlike ``client.createResolver``, no
    timer re-reads the file on the reactor thread; restart to pick up changes)."""
    servers = [parse_hostport(spec, 53)] if spec else system_nameservers()
    return client.Resolver(servers=servers, reactor=reactor)


def address_literal(domain: str) -> str | None:
    """The IP address of an address literal domain, else None."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner.lower().startswith("ipv6:"):
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        raise DestinationError("5.1.2", f"Invalid address literal {domain}")


def _dns_failure(domain: str, e: BaseException) -> DestinationError:
    if isinstance(e, error.DNSNameError):
        return DestinationError("5.1.2", f"Domain {domain} does not exist (DNS)")
    return DestinationError("4.4.3", f"DNS lookup for {domain} failed, will retry")


async def lookup_mx(resolver: Any, domain: str) -> list[MXHost]:
    """The MX hosts of ``domain`` in the order to try them.

    Raises :class:`DestinationError` (null MX, NXDOMAIN: permanent; other DNS
    failures: temporary).
    """
    try:
        answers, _auth, _add = await resolver.lookupMailExchange(domain)
    except Exception as e:
        raise _dns_failure(domain, e)
    records = [
        (rr.payload.preference, str(rr.payload.name).rstrip(".").lower())
        for rr in answers
        if rr.type == dns.MX
    ]
    if not records:
        return [MXHost(domain, 0)]  # implicit MX (RFC 5321 §5.1)
    if any(name == "" for _pref, name in records):
        raise DestinationError("5.1.10", f"Domain {domain} accepts no mail (null MX)")
    random.shuffle(records)
    records.sort(key=lambda r: r[0])
    seen: set[str] = set()
    hosts = []
    for pref, name in records:
        if name not in seen:
            seen.add(name)
            hosts.append(MXHost(name, pref))
    return hosts


async def lookup_addresses(resolver: Any, host: str) -> list[str]:
    """IPv4 then IPv6 addresses of ``host`` (an IP literal is returned as is).

    Raises :class:`DestinationError` (temporary, or permanent for NXDOMAIN)
    when there is no address at all.
    """
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    found: list[str] = []
    first_error: BaseException | None = None
    for lookup, rtype in ((resolver.lookupAddress, dns.A), (resolver.lookupIPV6Address, dns.AAAA)):
        try:
            answers, _auth, _add = await lookup(host)
        except Exception as e:
            first_error = first_error or e
            continue
        for rr in answers:
            if rr.type == rtype:
                found.append(rr.payload.address)  # packed bytes
    if found:
        return _ip_strings(found)
    if first_error is not None:
        raise _dns_failure(host, first_error)
    raise DestinationError("4.4.4", f"No address for mail host {host}")


def _ip_strings(values: list[Any]) -> list[str]:
    out = []
    for v in values:
        try:
            addr = ipaddress.ip_address(v if isinstance(v, str) else bytes(v))
        except ValueError:
            continue
        text = str(addr)
        if text not in out:
            out.append(text)
    return out


def gather(*ds: defer.Deferred[Any]) -> defer.Deferred[list[Any]]:
    return defer.gatherResults(list(ds), consumeErrors=True)
