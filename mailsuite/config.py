"""Configuration: one TOML file, validated strictly, with embedded defaults.

Every section is a frozen dataclass below; a field's default *is* the
embedded default and its ``metadata`` may carry a ``check`` (a predicate)
and ``allowed`` (the human description of allowed values used in errors).
``etc/mailsuite.toml`` documents each key; a test keeps the two in step.

Errors name the file, the key and what is allowed, e.g.::

    etc/mailsuite.toml: smtp.max_recipients: expected an integer >= 1, got "ten"

Unknown sections or keys are errors too (a typo must not silently fall back
to a default).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from twisted.internet import endpoints

from mailsuite.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB


def _opt(default: Any, allowed: str = "", check: Callable[[Any], bool] | None = None) -> Any:
    return field(default=default, metadata={"allowed": allowed, "check": check})


def _positive(default: int) -> Any:
    return _opt(default, "an integer >= 1", lambda v: v >= 1)


def _non_negative(default: int | float) -> Any:
    return _opt(default, "a number >= 0", lambda v: v >= 0)


def _is_endpoint(value: str) -> bool:
    if value == "":
        return True
    try:
        # Parse only; nothing is opened.  The reactor argument is unused by parsing.
        endpoints._parseServer(value, None)  # type: ignore[attr-defined]
    except Exception:
        return False
    return True


def _endpoint(default: str) -> Any:
    return _opt(
        default,
        'a Twisted server endpoint string such as "tcp:25:interface=0.0.0.0", or "" to disable',
        _is_endpoint,
    )


@dataclass(frozen=True)
class ServerConfig:
    hostname: str = _opt("localhost", "a non-empty host name", lambda v: bool(v.strip()))
    data_dir: str = _opt("./mailsuite-data", "a directory path", lambda v: bool(v))
    # Server processes sharing the listening sockets: 0 = one per CPU core
    # (at most 8); 1 = everything in the twistd process.
    workers: int = _opt(
        0, "0 (one per CPU core, at most 8) or an integer from 1 to 64", lambda v: 0 <= v <= 64
    )


@dataclass(frozen=True)
class ListenersConfig:
    """Endpoint strings.  TLS for submissions/pop3s/imaps is added by mailsuite
    around the plain endpoint, so use ``tcp:`` (or ``unix:``) here."""

    smtp: str = _endpoint("tcp:2525:interface=127.0.0.1")
    submission: str = _endpoint("tcp:2587:interface=127.0.0.1")
    submissions: str = _endpoint("tcp:2465:interface=127.0.0.1")
    pop3: str = _endpoint("tcp:2110:interface=127.0.0.1")
    pop3s: str = _endpoint("tcp:2995:interface=127.0.0.1")
    imap: str = _endpoint("tcp:2143:interface=127.0.0.1")
    imaps: str = _endpoint("tcp:2993:interface=127.0.0.1")


@dataclass(frozen=True)
class TLSConfig:
    certificate: str = _opt("", 'a PEM file path, or "" for a self-signed certificate')
    private_key: str = _opt("", 'a PEM file path, or "" for a self-signed certificate')
    minimum_version: str = _opt("1.2", '"1.2" or "1.3"', lambda v: v in ("1.2", "1.3"))


@dataclass(frozen=True)
class LimitsConfig:
    """Connection limits shared by every listener."""

    max_connections: int = _positive(1000)
    max_connections_per_ip: int = _positive(50)


@dataclass(frozen=True)
class AuthConfig:
    allow_plaintext: bool = _opt(False, "true or false")
    cache_ttl: float = _non_negative(300)
    throttle_window: float = _opt(900.0, "seconds, > 0", lambda v: v > 0)
    throttle_base_delay: float = _non_negative(1.0)
    throttle_max_delay: float = _non_negative(15.0)
    throttle_max_failures: int = _positive(10)
    # argon2id parameters for new hashes (RFC 9106 §4, second recommended
    # option); stored hashes with other parameters are rehashed on login.
    argon2_time_cost: int = _positive(3)
    argon2_memory_cost: int = _opt(65536, "KiB, an integer >= 8", lambda v: v >= 8)
    argon2_parallelism: int = _positive(4)
    cache_max_entries: int = _positive(10000)


@dataclass(frozen=True)
class UsersConfig:
    subaddress_separator: str = _opt(
        "+", 'one character, or "" to disable subaddressing', lambda v: len(v) <= 1 and v != "@"
    )
    localpart_case_sensitive: bool = _opt(False, "true or false")
    alias_max_depth: int = _opt(10, "an integer from 1 to 100", lambda v: 1 <= v <= 100)


@dataclass(frozen=True)
class SMTPConfig:
    max_line_length: int = _opt(2048, "an integer >= 512", lambda v: v >= 512)
    max_message_size: int = _positive(50 * MiB)
    max_recipients: int = _positive(100)
    max_errors: int = _positive(10)
    command_timeout: float = _opt(300.0, "seconds, > 0", lambda v: v > 0)
    data_timeout: float = _opt(600.0, "seconds, > 0", lambda v: v > 0)
    sender_policy: str = _opt(
        "own", '"own" (own addresses and aliases) or "any"', lambda v: v in ("own", "any")
    )


@dataclass(frozen=True)
class POP3Config:
    max_line_length: int = _opt(512, "an integer >= 255", lambda v: v >= 255)
    timeout: float = _opt(600.0, "seconds, > 0", lambda v: v > 0)
    expire_days: int = _opt(
        -1, "an integer >= -1 (-1: do not advertise EXPIRE)", lambda v: v >= -1
    )
    login_delay: int = _opt(
        -1, "an integer >= -1 (-1: do not advertise LOGIN-DELAY)", lambda v: v >= -1
    )


@dataclass(frozen=True)
class IMAPConfig:
    max_line_length: int = _opt(64 * KiB, "an integer >= 1024", lambda v: v >= 1024)
    max_literal_size: int = _positive(50 * MiB)
    max_unauth_literal_size: int = _positive(8 * KiB)
    timeout_unauthenticated: float = _opt(60.0, "seconds, > 0", lambda v: v > 0)
    timeout_authenticated: float = _opt(1800.0, "seconds, > 0", lambda v: v > 0)
    idle_poll_interval: float = _opt(5.0, "seconds, > 0", lambda v: v > 0)
    # Per-process memory for message headers and small bodies (MiB).
    header_cache_mb: int = _non_negative(32)
    body_cache_mb: int = _non_negative(16)


@dataclass(frozen=True)
class QueueConfig:
    retry_schedule: tuple[int, ...] = _opt(
        (300, 600, 1200, 2400, 3600),
        "a non-empty list of positive seconds",
        lambda v: bool(v) and all(isinstance(x, int) and x > 0 for x in v),
    )
    max_age: int = _positive(5 * 24 * 3600)
    delay_notice_after: int = _non_negative(0)
    max_concurrent: int = _positive(20)
    max_per_destination: int = _positive(4)
    smarthost: str = _opt("", 'host[:port], or "" to deliver by MX')
    smarthost_username: str = _opt("", "a user name")
    smarthost_password_file: str = _opt("", "a file holding the password")
    require_tls_domains: tuple[str, ...] = _opt((), "a list of domain names")
    resolver: str = _opt("", 'a "host:port" DNS server, or "" for the system resolver')
    mx_port: int = _opt(25, "a TCP port from 1 to 65535", lambda v: 1 <= v <= 65535)
    tls_ca_file: str = _opt("", 'a PEM file of trusted CAs, or "" for the system trust store')
    scan_interval: float = _opt(60.0, "seconds, > 0", lambda v: v > 0)
    connect_timeout: float = _opt(30.0, "seconds, > 0", lambda v: v > 0)
    command_timeout: float = _opt(300.0, "seconds, > 0", lambda v: v > 0)


@dataclass(frozen=True)
class Config:
    """The whole configuration.  ``source`` is the file it came from ("" = embedded)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    listeners: ListenersConfig = field(default_factory=ListenersConfig)
    tls: TLSConfig = field(default_factory=TLSConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    users: UsersConfig = field(default_factory=UsersConfig)
    smtp: SMTPConfig = field(default_factory=SMTPConfig)
    pop3: POP3Config = field(default_factory=POP3Config)
    imap: IMAPConfig = field(default_factory=IMAPConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    source: str = ""

    @property
    def data_dir(self) -> Path:
        """The data directory, relative paths taken from the working directory."""
        return Path(self.server.data_dir)

    def with_data_dir(self, data_dir: str) -> Config:
        return dataclasses.replace(
            self, server=dataclasses.replace(self.server, data_dir=data_dir)
        )


SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Config)
    if f.name != "source"
}


def _type_name(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, "a list"
    )


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check ``value`` against the annotated type; ints are accepted for floats."""
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if isinstance(tp, types.GenericAlias) and tp.__origin__ is tuple:
        item = tp.__args__[0]
        if not isinstance(value, list):
            return False, value
        return all(_coerce(v, item)[0] for v in value), tuple(value)
    raise TypeError(tp)


def _build_section(where: str, name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{name}]: expected a table")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: {name}.{key}: unknown key (allowed: {', '.join(sorted(fields))})"
            )
        meta = fields[key].metadata
        allowed = meta.get("allowed") or _type_name(hints[key])
        ok, value = _coerce(value, hints[key])
        check = meta.get("check")
        if ok and check is not None:
            try:
                ok = bool(check(value))
            except Exception:
                ok = False
        if not ok:
            raise ConfigError(f"{where}: {name}.{key}: expected {allowed}, got {value!r}")
        values[key] = value
    return cls(**values)


def parse(data: dict[str, Any], where: str = "<embedded>") -> Config:
    """Build a :class:`Config` from parsed TOML; raises :class:`ConfigError`."""
    sections = {}
    for name, raw in data.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{where}: [{name}]: unknown section (allowed: {', '.join(sorted(SECTIONS))})"
            )
        sections[name] = _build_section(where, name, SECTIONS[name], raw)
    return Config(source=where if where != "<embedded>" else "", **sections)


def load(path: str | os.PathLike[str] | None) -> Config:
    """Load the config file at ``path`` (None: embedded defaults).

    Raises :class:`ConfigError` with one line naming the file for a missing
    or unreadable file, invalid TOML, unknown keys, wrong types and bad values.
    """
    if path is None:
        return Config()
    where = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found")
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror}")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}")
    return parse(data, where)
