"""The contracts between layers.

Dependencies point one way: protocols -> delivery/auth -> storage/users/mime.
Protocol code sees storage and the directory only through these shapes; the
implementations live in ``mailsuite.storage``, ``mailsuite.delivery`` and
``mailsuite.users``.  Every method documented as *blocking* touches the disk
and must be called from protocol code through :class:`BlockingRunner`
(DESIGN.md §2 "Off the reactor").

Storage speaks UIDs only; sequence numbers and ``\\Recent`` belong to the IMAP
session's selected-mailbox view (DESIGN.md §4.1).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


# --------------------------------------------------------------------------
# The thread-pool seam
# --------------------------------------------------------------------------
class BlockingRunner(Protocol):
    """Runs blocking work (disk, fsync, hashing) off the reactor thread.

    ``run(fn, *args, **kw)`` returns a Deferred fired on the reactor thread
    with ``fn``'s result, or failing with what ``fn`` raised.
    """

    def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> Deferred[T]: ...


# --------------------------------------------------------------------------
# Storage (mailsuite.storage)
# --------------------------------------------------------------------------
#: System flags as IMAP names them; maildir letters D F P R S T map to
#: \Draft \Flagged (P=passed, no IMAP flag; kept as "$Forwarded") \Answered
#: \Seen \Deleted.  Keywords are any other atom.
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """What a mailbox listing knows about one message without opening it.

    ``size`` is the size as sent to clients (the stored file is CRLF, so it
    is the file size).  ``internaldate`` is timezone-aware.  ``modseq`` is
    the CONDSTORE mod-sequence (RFC 7162 §3.1; 0 where a store does not
    track it; the Maildir store always gives a positive value).
    """

    uid: int
    flags: frozenset[str]
    size: int
    internaldate: datetime.datetime
    modseq: int = 0


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder as IMAP LIST shows it; ``name`` uses ``/`` as delimiter, UTF-7 as on the wire."""

    name: str
    special_use: str | None = None  # "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"
    has_children: bool = False
    subscribed: bool = False


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What changed since the previous sync of the same :class:`Mailbox` object."""

    added: Sequence[int] = ()
    expunged: Sequence[int] = ()
    flags_changed: Sequence[int] = ()


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of :meth:`Mailbox.store_flags_conditional` (RFC 7162 §3.1.3).

    ``messages``: UID -> (flags, modseq) of every existing message that passed
    the UNCHANGEDSINCE test, changed or not; ``changed``: the UIDs (ascending)
    whose flags changed; ``modified``: the UIDs (ascending) that failed the
    test and were left alone (the MODIFIED response code).
    """

    messages: Mapping[int, tuple[frozenset[str], int]] = field(default_factory=dict)
    changed: Sequence[int] = ()
    modified: Sequence[int] = ()


class Mailbox(Protocol):
    """One folder of one account.  All methods are blocking.

    A Mailbox object is a view owned by one session; several views of the
    same folder (several sessions, several processes) stay consistent through
    the on-disk data.  Raises :class:`mailsuite.errors.MailError` with
    ``NONEXISTENT`` (folder deleted), ``EXPUNGED`` (a UID no longer exists),
    ``OVER_QUOTA``, ``TEMPORARY``.
    """

    name: str
    uidvalidity: int

    def sync(self) -> SyncResult:
        """Bring the view up to date with the disk (new/ -> cur/, UIDs, flags).

        Takes the uidlist lock only when something must be written.
        """
        ...

    def uidnext(self) -> int: ...

    def messages(self) -> Sequence[MessageInfo]:
        """The messages known at the last sync, in UID order: a fixed listing
        that later changes do not alter, safe to read from any thread."""
        ...

    def info(self, uid: int) -> MessageInfo:
        """What the view knows of one message.  Raises EXPUNGED if gone."""
        ...

    def changed_on_disk(self) -> bool:
        """Cheap check (``stat`` of new/ and cur/) whether sync() may find something."""
        ...

    def open_message(self, uid: int) -> IO[bytes]:
        """The stored bytes (CRLF line ends).  Raises EXPUNGED if gone."""
        ...

    def header_bytes(self, uid: int, end: int | None = None) -> bytes:
        """The stored top-level header (up to ``end``, or the cached header
        length).  Raises EXPUNGED if gone."""
        ...

    def header_ends(self, uids: Sequence[int]) -> dict[int, int]:
        """Cached header lengths of ``uids`` (one index query per batch);
        UIDs without a cached value are left out."""
        ...

    def structure(self, uid: int) -> Any:
        """The cached MIME structure (``mailsuite.mime``) from the index."""
        ...

    def store_flags(
        self, uids: Iterable[int], flags: Iterable[str], mode: str
    ) -> dict[int, frozenset[str]]:
        """mode is "set", "add" or "remove"; returns the new flags of the messages that exist."""
        ...

    def store_flags_conditional(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """STORE with CONDSTORE (RFC 7162 §3.1.3): messages whose modseq is
        greater than ``unchanged_since`` are not changed and are reported in
        ``modified``; one new modseq for the messages this call changes."""
        ...

    def highest_modseq(self) -> int:
        """HIGHESTMODSEQ (RFC 7162 §3.1.2.1) as of the last sync or own change;
        below the modseq of any expunge sync() has not reported yet."""
        ...

    def modseq(self, uid: int) -> int:
        """One message's modseq; raises EXPUNGED."""
        ...

    def changed_since(self, modseq: int) -> list[int]:
        """UIDs (ascending) of the messages whose modseq is greater than ``modseq``."""
        ...

    def expunged_since(self, modseq: int) -> tuple[list[int], bool]:
        """UIDs expunged with a modseq greater than ``modseq``, and whether that
        list is complete (else report every vanished UID: RFC 7162 §3.2.5.2)."""
        ...

    def expunged_at(self, uids: Iterable[int]) -> dict[int, int]:
        """The modseq at which each of ``uids`` was expunged, where still known."""
        ...

    def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        """Remove messages flagged ``\\Deleted`` (restricted to ``uids`` if given); returns removed UIDs."""
        ...

    def append(
        self,
        source: IO[bytes],
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int:
        """Store a message durably (tmp -> fsync -> cur -> fsync dir) and return its UID."""
        ...

    def copy_to(self, uids: Iterable[int], dest: Mailbox) -> dict[int, int]:
        """Copy messages (with flags) to ``dest``; returns source UID -> new UID."""
        ...

    def pop3_uidl(self, uid: int) -> str:
        """A UIDL stable for the life of the message (RFC 1939 §7)."""
        ...

    def close(self) -> None:
        """Release what the view holds (its snapshot, open files)."""
        ...


class Account(Protocol):
    """One user's mail store.  All methods are blocking."""

    address: str

    def ensure_created(self) -> None:
        """Create INBOX and the special-use folders if missing (idempotent)."""
        ...

    def folders(self) -> list[FolderInfo]: ...

    def open(self, name: str) -> Mailbox:
        """``name`` as IMAP sends it (``INBOX`` case-insensitive, ``/`` delimiter)."""
        ...

    def create_folder(self, name: str) -> None: ...

    def delete_folder(self, name: str) -> None: ...

    def rename_folder(self, old: str, new: str) -> None: ...

    def subscribe(self, name: str, subscribed: bool) -> None: ...

    def subscriptions(self) -> list[str]:
        """Every subscribed name, whether or not the folder still exists."""
        ...

    def usage(self) -> tuple[int, int]:
        """(bytes, messages) used, for quotas."""
        ...


class Store(Protocol):
    def account(self, address: str) -> Account:
        """The store of a (normalised) account address.  Does not touch the disk."""
        ...


# --------------------------------------------------------------------------
# Change hub: in-process notifications between sessions and deliveries
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MailboxChange:
    account: str
    folder: str  # IMAP name, "INBOX" for the root
    kind: str  # "added", "flags", "expunged", "folders"
    uids: tuple[int, ...] = ()


class ChangeHub(Protocol):
    def subscribe(
        self, account: str, callback: Callable[[MailboxChange], None]
    ) -> Callable[[], None]:
        """Call ``callback`` on the reactor thread for every change; returns an unsubscribe function."""
        ...

    def publish(self, change: MailboxChange) -> None:
        """Thread-safe: may be called from a pool thread."""
        ...


# --------------------------------------------------------------------------
# Delivery (mailsuite.delivery)
# --------------------------------------------------------------------------
@dataclass(slots=True)
class Envelope:
    """An SMTP envelope.  ``mail_from`` is "" for the null sender.

    ``params`` holds MAIL parameters kept for the queue (RET, ENVID, ...);
    ``rcpt_params`` maps a recipient to its RCPT parameters (NOTIFY, ORCPT).
    """

    mail_from: str
    recipients: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    rcpt_params: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """Where one copy goes: an account and a folder (IMAP name)."""

    account: str
    folder: str = "INBOX"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Per-recipient outcome; ``error`` is None on success."""

    recipient: str
    error: Any = None  # MailError | None
    uid: int | None = None


class Delivery(Protocol):
    """A message being received.  ``write`` appends bytes (already CRLF,
    dot-unstuffed) to one spool file; ``commit`` makes a durable copy per
    target and returns a result per recipient; ``abort`` removes the spool.
    Blocking."""

    def write(self, data: bytes) -> None: ...

    def size(self) -> int: ...

    def commit(self, targets: dict[str, list[LocalTarget]]) -> list[DeliveryResult]: ...

    def abort(self) -> None: ...


class DeliveryAgent(Protocol):
    def begin(self, envelope: Envelope) -> Delivery:
        """Open a spool file.  Blocking."""
        ...


# --------------------------------------------------------------------------
# Users and authentication (mailsuite.users)
# --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserRecord:
    address: str  # normalised: localpart lower-cased, domain as IDNA A-label
    enabled: bool = True
    quota_bytes: int = 0  # 0 = unlimited
    quota_messages: int = 0


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where mail for one address goes.  ``local`` are account addresses
    (with the folder, for subaddressing into folders later); ``remote`` are
    addresses outside our domains (aliases that forward)."""

    local: tuple[LocalTarget, ...] = ()
    remote: tuple[str, ...] = ()


class Directory(Protocol):
    """The user database.  Blocking (SQLite); changes by ``mailsuite-admin``
    are seen at once (no cache that outlives a call, or one invalidated by
    the file's data_version)."""

    def is_local_domain(self, domain: str) -> bool: ...

    def resolve(self, address: str) -> Resolution:
        """Raises MailError(UNKNOWN_MAILBOX) for an address in a local domain
        that nothing receives, MailError(BAD_ADDRESS) for a malformed one,
        MailError(ALIAS_LOOP) when aliases lead back to themselves.
        An address outside local domains resolves to ``remote=(address,)``."""
        ...

    def get_user(self, address: str) -> UserRecord | None: ...

    def sender_addresses(self, address: str) -> set[str]:
        """Addresses the user may use as envelope sender (own + aliases to it)."""
        ...


class CredentialStore(Protocol):
    """What the authenticator needs besides :class:`Directory` (blocking)."""

    def get_credentials(self, address: str) -> tuple[UserRecord, str] | None:
        """The user and its stored password hash, or None."""
        ...

    def replace_password_hash(self, address: str, old: str, new: str) -> bool:
        """Store ``new`` only if the stored hash is still ``old`` (rehash on login)."""
        ...


class Authenticator(Protocol):
    """Checks credentials for every protocol (through twisted.cred inside).

    ``login`` never blocks the reactor; it fails with MailError
    AUTH_FAILED (wrong user or password: same text and similar timing),
    THROTTLED (too many failures from ``peer``), TEMPORARY.
    ``peer`` is the client IP address as a string.
    """

    def login(
        self, username: str, password: str, peer: str, protocol: str
    ) -> Deferred[UserRecord]: ...
