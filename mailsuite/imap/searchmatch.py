"""SEARCH keys (RFC 3501 §6.4.4): parse the key list, match one message.

Contract for the IMAP session::

    from mailsuite.imap.searchmatch import (
        MessageContext, parse_search_program, matches)

    charset, tree = parse_search_program(args)   # tokens after "SEARCH"
    for msg in view:                              # sequence order
        ctx = MessageContext(uid=..., seq=..., flags=..., size=...,
                             internaldate=..., max_seq=..., max_uid=...,
                             load_raw=lambda: ..., load_part=lambda: ...)
        if matches(tree, ctx): ...

* Tokens come from ``mailsuite.imap.parser.tokenize``: ``str`` atoms,
  ``bytes`` strings (quoted or literal), nested ``list`` for parentheses.
  :func:`parse_search_program` accepts an optional leading ``CHARSET x``
  (UTF-8, US-ASCII accepted; anything else raises :class:`SearchParseError`
  with ``code == "BADCHARSET"``); :func:`parse_search_keys` takes the keys
  only.  Syntax errors raise :class:`SearchParseError` (answer ``BAD``).
* The tree is made of :class:`Key` (a leaf), :class:`Not`, :class:`Or`,
  :class:`And` and :class:`SeqSet` (a sequence set, or a UID set for the
  ``UID`` key); ``*`` resolves against ``max_seq`` / ``max_uid`` of the
  context, so the session only supplies numbers.  Set membership is a
  binary search, linear work overall.
* :class:`MessageContext` reads the message lazily: flag, size, date and set
  keys never touch the disk; header keys parse the header only; BODY/TEXT
  decode the text parts (quoted-printable, base64, the part's charset).
  ``flags`` holds system flags (``\\Seen``...), ``\\Recent`` when the
  message is recent in this session, and keywords.

Matching rules: header keys (FROM, TO, CC, BCC, SUBJECT, HEADER) compare
case-insensitively (Unicode case folding) against the RFC 2047-decoded
value, address headers in their normalised ``Name <box@host>`` form; an
empty string matches every message that has the field.  BODY searches
decoded text/* and message/* bodies, TEXT also every header.  BEFORE/ON/
SINCE use the internal date, SENT* the Date header, both by calendar date in
their own time zone (a missing Date counts as 1 Jan 1970).  OLDER/YOUNGER
(RFC 5032 WITHIN) compare the internal date with the server clock given to
the parser, to the second.  Matching never
raises for any message content.
"""

from __future__ import annotations

import bisect
import datetime
import email.utils
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from mailsuite.mime.address import Address, parse_addresses
from mailsuite.mime.decode import decode_body, decode_header_value, to_text
from mailsuite.mime.structure import Part, iter_fields, parse_message

Token: TypeAlias = "str | bytes | list[Token]"

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DATE_RE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")
_SET_RE = re.compile(r"^(?:\d+|\*)(?::(?:\d+|\*))?(?:,(?:\d+|\*)(?::(?:\d+|\*))?)*$")
_EPOCH = datetime.date(1970, 1, 1)
_MAX_DEPTH = 64

_FLAG_KEYS = {
    "ANSWERED": ("\\answered", True),
    "DELETED": ("\\deleted", True),
    "DRAFT": ("\\draft", True),
    "FLAGGED": ("\\flagged", True),
    "SEEN": ("\\seen", True),
    "RECENT": ("\\recent", True),
    "UNANSWERED": ("\\answered", False),
    "UNDELETED": ("\\deleted", False),
    "UNDRAFT": ("\\draft", False),
    "UNFLAGGED": ("\\flagged", False),
    "UNSEEN": ("\\seen", False),
    "OLD": ("\\recent", False),
}
_NO_ARG = frozenset({"ALL", "NEW", *_FLAG_KEYS})
_STRING_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})
_HEADER_KEYS = frozenset(
    {"BCC", "CC", "FROM", "SUBJECT", "TO", "HEADER", "SENTBEFORE", "SENTON", "SENTSINCE"}
)
_INFO_KEYS = frozenset(
    {"LARGER", "SMALLER", "BEFORE", "ON", "SINCE", "OLDER", "YOUNGER", "MODSEQ"}
)
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "sender", "reply-to"})


class SearchParseError(ValueError):
    """Bad SEARCH syntax; ``code`` is an RFC 5530 response code or None."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


# ---------------------------------------------------------------------------
# the tree


@dataclass(frozen=True, slots=True)
class Key:
    """A leaf key: ``name`` upper-case, ``args`` already converted.

    Strings are ``str`` (normalised for matching), dates ``datetime.date``,
    sizes ``int``; HEADER has ``(field-name, value)``.
    """

    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Not:
    key: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class SeqSet:
    """A sequence set (``uid`` False) or UID set; ``0`` stands for ``*``."""

    ranges: tuple[tuple[int, int], ...]
    uid: bool = False
    _cache: dict[int, tuple[list[int], list[int]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def contains(self, value: int, star: int) -> bool:
        """True if ``value`` is in the set when ``*`` is ``star``."""
        table = self._cache.get(star)
        if table is None:
            table = self._resolve(star)
            self._cache.clear()
            self._cache[star] = table
        starts, ends = table
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and value <= ends[i]

    def _resolve(self, star: int) -> tuple[list[int], list[int]]:
        spans = sorted(
            (min(a or star, b or star), max(a or star, b or star)) for a, b in self.ranges
        )
        starts: list[int] = []
        ends: list[int] = []
        for lo, hi in spans:
            if ends and lo <= ends[-1] + 1:
                ends[-1] = max(ends[-1], hi)
            else:
                starts.append(lo)
                ends.append(hi)
        return starts, ends


Node: TypeAlias = "Key | Not | Or | And | SeqSet"


# ---------------------------------------------------------------------------
# parsing


def normalise(text: str) -> str:
    """The form both search keys and message text are compared in."""
    return unicodedata.normalize("NFKD", text.casefold())


def _text(token: Token, charset: str) -> str:
    if isinstance(token, bytes):
        try:
            return token.decode(charset)
        except UnicodeDecodeError:
            raise SearchParseError("Invalid string for the charset") from None
    if isinstance(token, str):
        return token
    raise SearchParseError("String expected")


def _modseq_value(token: Token) -> int:
    """``mod-sequence-valzer`` (0 .. 2^63-1, RFC 7162 §7)."""
    if not isinstance(token, str) or not token.isascii() or not token.isdigit():
        raise SearchParseError("Invalid mod-sequence")
    if len(token) > 19 or int(token) > 2**63 - 1:
        raise SearchParseError("Invalid mod-sequence")
    return int(token)


def _number(token: Token) -> int:
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    if not isinstance(text, str) or not text.isdigit() or len(text) > 10:
        raise SearchParseError("Number expected")
    return int(text)


def _date(token: Token) -> datetime.date:
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    m = _DATE_RE.match(text) if isinstance(text, str) else None
    if m is None or m.group(2).lower() not in _MONTHS:
        raise SearchParseError("Invalid date")
    try:
        return datetime.date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
    except ValueError:
        raise SearchParseError("Invalid date") from None


def parse_seqset(text: str, uid: bool = False) -> SeqSet:
    """``1:5,7,9:*`` as a :class:`SeqSet` (RFC 3501 §9 ``sequence-set``)."""
    if _SET_RE.match(text) is None:
        raise SearchParseError("Invalid sequence set")
    ranges = []
    for piece in text.split(","):
        lo, _, hi = piece.partition(":")
        a = 0 if lo == "*" else int(lo)
        b = a if not hi else (0 if hi == "*" else int(hi))
        ranges.append((a, b))
    return SeqSet(tuple(ranges), uid)


class _KeyParser:
    def __init__(self, tokens: Sequence[Token], charset: str, now: float | None = None) -> None:
        self.tokens = list(tokens)
        self.pos = 0
        self.charset = charset
        self.now = now  # server clock for OLDER/YOUNGER (RFC 5032)

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise SearchParseError("Missing search argument")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def key(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise SearchParseError("Search keys nested too deeply")
        token = self.take()
        if isinstance(token, list):
            if not token:
                raise SearchParseError("Empty parenthesised list")
            inner = _KeyParser(token, self.charset, self.now)
            keys = inner.all(depth + 1)
            return keys[0] if len(keys) == 1 else And(tuple(keys))
        if isinstance(token, bytes):
            raise SearchParseError("Search key expected")
        name = token.upper()
        if name in _NO_ARG:
            return Key(name)
        if name in _STRING_KEYS:
            return Key(name, (normalise(_text(self.take(), self.charset)),))
        if name in _DATE_KEYS:
            return Key(name, (_date(self.take()),))
        if name in ("LARGER", "SMALLER"):
            return Key(name, (_number(self.take()),))
        if name in ("OLDER", "YOUNGER") and self.now is not None:
            # RFC 5032 §2: the target time is now minus the interval (nz-number)
            interval = _number(self.take())
            if interval == 0:
                raise SearchParseError("Interval must be positive")
            return Key(name, (int(self.now) - interval,))
        if name in ("KEYWORD", "UNKEYWORD"):
            return Key(name, (_text(self.take(), "utf-8").casefold(),))
        if name == "HEADER":
            field_name = _text(self.take(), self.charset)
            value = _text(self.take(), self.charset)
            return Key(name, (field_name.lower(), normalise(value)))
        if name == "MODSEQ":
            return self._modseq()
        if name == "NOT":
            return Not(self.key(depth + 1))
        if name == "OR":
            return Or(self.key(depth + 1), self.key(depth + 1))
        if name == "UID":
            uid_set = self.take()
            if not isinstance(uid_set, str):
                raise SearchParseError("Invalid UID set")
            return parse_seqset(uid_set, uid=True)
        if _SET_RE.match(token):
            return parse_seqset(token)
        raise SearchParseError("Unknown search key")

    def _modseq(self) -> Key:
        """``MODSEQ ["/flags/<flag>" priv|shared|all] <modseq>`` (RFC 7162
        §3.1.5); one modseq per message, so the entry name is checked only."""
        token = self.take()
        if isinstance(token, bytes):
            kind = self.take()
            if not token.lower().startswith(b"/flags/") or not (
                isinstance(kind, str) and kind.lower() in ("priv", "shared", "all")
            ):
                raise SearchParseError("Invalid MODSEQ entry")
            token = self.take()
        return Key("MODSEQ", (_modseq_value(token),))

    def all(self, depth: int = 0) -> list[Node]:
        keys = []
        while self.pos < len(self.tokens):
            keys.append(self.key(depth))
        if not keys:
            raise SearchParseError("Missing search key")
        return keys


def parse_search_keys(
    tokens: Sequence[Token], charset: str = "utf-8", now: float | None = None
) -> Node:
    """The search keys (no CHARSET) as one tree; raises SearchParseError.

    ``now`` (POSIX seconds, the server clock) enables the RFC 5032 keys
    ``OLDER n``/``YOUNGER n``; they become keys holding the target time.
    """
    keys = _KeyParser(tokens, charset, now).all()
    return keys[0] if len(keys) == 1 else And(tuple(keys))


def parse_search_program(tokens: Sequence[Token], now: float | None = None) -> tuple[str, Node]:
    """``[CHARSET name] keys...`` -> (charset, tree); ``now`` as for
    :func:`parse_search_keys`."""
    charset = "utf-8"
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], str) and tokens[0].upper() == "CHARSET":
        if len(tokens) < 2 or isinstance(tokens[1], list):
            raise SearchParseError("Missing charset")
        name = tokens[1].decode("ascii", "replace") if isinstance(tokens[1], bytes) else tokens[1]
        if name.lower() not in ("utf-8", "us-ascii", "utf8"):
            raise SearchParseError("Unsupported charset", "BADCHARSET")
        charset = "utf-8"
        tokens = tokens[2:]
    return charset, parse_search_keys(tokens, charset, now)


# ---------------------------------------------------------------------------
# one message


@dataclass
class MessageContext:
    """What a key is matched against; raw bytes and Part load on first use."""

    uid: int
    seq: int
    flags: frozenset[str] | set[str] | Sequence[str]
    size: int
    internaldate: datetime.datetime
    max_seq: int = 0
    max_uid: int = 0
    modseq: int = 0
    load_raw: Callable[[], bytes] | None = None
    load_part: Callable[[], Part] | None = None
    load_header: Callable[[], bytes] | None = None
    #: the message's cached top-level header (``storage.headcache.HeadEntry``:
    #: ``raw``, ``memo``, ``remember``): header keys then read no file and
    #: keep what they derive from it for the next search
    head: Any = None
    raw: bytes | None = None
    part: Part | None = None
    _flags: frozenset[str] | None = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def flag_set(self) -> frozenset[str]:
        if self._flags is None:
            self._flags = frozenset(f.casefold() for f in self.flags)
        return self._flags

    def get_raw(self) -> bytes:
        if self.raw is None:
            self.raw = self.load_raw() if self.load_raw is not None else b""
        return self.raw

    def get_part(self) -> Part:
        if self.part is None:
            self.part = self.load_part() if self.load_part is not None else None
            if self.part is None:
                self.part = parse_message(self.get_raw())
        return self.part

    def headers(self) -> list[tuple[str, str]]:
        """(lower-case name, value) of the message header, in order."""
        cached = self._cache.get("headers")
        if cached is None and self.head is not None:
            cached = self.head.memo.get("headers")
            if cached is None:
                raw = self.head.raw
                fields = iter_fields(raw, 0, len(raw))
                cached = self.head.remember("headers", [(n.lower(), v) for n, v, _s, _e in fields])
            self._cache["headers"] = cached
        elif cached is None:
            if self.raw is None and self.part is None and self.load_header is not None:
                raw = self.load_header()  # only the header bytes
                start, stop = 0, len(raw)
            else:
                part = self.get_part()
                raw = self.get_raw()
                start, stop = part.start, part.body_start
            cached = [
                (name.lower(), value) for name, value, _s, _e in iter_fields(raw, start, stop)
            ]
            self._cache["headers"] = cached
        return cached  # type: ignore[no-any-return]

    def header_texts(self, name: str) -> list[str]:
        """Normalised searchable values of every ``name`` field."""
        key = "h:" + name
        cached = self._cache.get(key)
        if cached is None:
            head = self.head
            if head is not None:
                cached = head.memo.get(key)
            if cached is None:
                cached = [_header_text(name, v) for n, v in self.headers() if n == name]
                if head is not None:
                    head.remember(key, cached)
            self._cache[key] = cached
        return cached  # type: ignore[no-any-return]

    def _derived(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value computed from the message content once per context, and
        kept in the cached header entry's memo (when there is one) for later
        searches: the content of a stored message never changes."""
        cached = self._cache.get(key)
        if cached is None:
            head = self.head
            if head is not None:
                cached = head.memo.get(key)
            if cached is None:
                cached = compute()
                if head is not None:
                    head.remember(key, cached)
            self._cache[key] = cached
        return cached

    def body_texts(self) -> list[str]:
        texts: list[str] = self._derived(
            "body", lambda: _body_texts(self.get_raw(), self.get_part())
        )
        return texts

    def header_blocks(self) -> list[str]:
        texts: list[str] = self._derived("hdrs", self._header_blocks)
        return texts

    def _header_blocks(self) -> list[str]:
        raw = self.get_raw()
        out = []
        for part in self.get_part().walk():
            block = raw[part.start : part.body_start].decode("latin-1")
            out.append(normalise(decode_header_value(block)))
        return out

    def sent_date(self) -> datetime.date:
        cached = self._cache.get("sent")
        if cached is None and self.head is not None:
            cached = self.head.memo.get("sent")
        if cached is None:
            cached = _EPOCH
            for name, value in self.headers():
                if name == "date":
                    cached = _parse_date(value)
                    break
            if self.head is not None:
                self.head.remember("sent", cached)
        self._cache["sent"] = cached
        return cached  # type: ignore[no-any-return]


def _address_text(addrs: list[Address]) -> str:
    out = []
    in_group = False
    for a in addrs:
        if a.domain is None:
            if not in_group:
                out.append((a.mailbox or "") + ": ")
            in_group = not in_group
            continue
        name = decode_header_value(a.name) if a.name else ""
        box = f"{a.mailbox}@{a.domain}" if a.domain else (a.mailbox or "")
        out.append(f"{name} <{box}>" if name else box)
    return ", ".join(out)


def _header_text(name: str, value: str) -> str:
    if name in _ADDRESS_HEADERS:
        return normalise(_address_text(parse_addresses(value)))
    return normalise(decode_header_value(value))


def _body_texts(raw: bytes, root: Part) -> list[str]:
    out = []
    for part in root.walk():
        if part.children:
            continue
        ctype = part.content.get("t")
        if ctype is not None and ctype.lower() not in ("text", "message"):
            continue
        data = decode_body(raw, part)
        out.append(normalise(to_text(data, part.param("charset"))))
    return out


def _parse_date(value: str) -> datetime.date:
    try:
        parsed = email.utils.parsedate_tz(value.replace("\n", " "))
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        return _EPOCH
    try:
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except (TypeError, ValueError):
        return _EPOCH


def _match_key(key: Key, ctx: MessageContext) -> bool:
    name = key.name
    flag = _FLAG_KEYS.get(name)
    if flag is not None:
        return (flag[0] in ctx.flag_set()) == flag[1]
    if name == "MODSEQ":  # RFC 7162 §3.1.5: one modseq per message
        return ctx.modseq >= int(key.args[0])
    if name == "ALL":
        return True
    if name == "NEW":
        flags = ctx.flag_set()
        return "\\recent" in flags and "\\seen" not in flags
    if name == "KEYWORD":
        return key.args[0] in ctx.flag_set()
    if name == "UNKEYWORD":
        return key.args[0] not in ctx.flag_set()
    if name == "LARGER":
        return ctx.size > int(key.args[0])
    if name == "OLDER":  # RFC 5032: at or before the target time
        return ctx.internaldate.timestamp() <= float(key.args[0])
    if name == "YOUNGER":  # at or after it
        return ctx.internaldate.timestamp() >= float(key.args[0])
    if name == "SMALLER":
        return ctx.size < int(key.args[0])
    if name in _DATE_KEYS:
        return _match_date(name, key.args[0], ctx)
    if name in ("FROM", "TO", "CC", "BCC", "SUBJECT"):
        return _contains(ctx.header_texts(name.lower()), key.args[0])
    if name == "HEADER":
        return _contains(ctx.header_texts(key.args[0]), key.args[1])
    if name == "BODY":
        return _contains(ctx.body_texts(), key.args[0])
    if name == "TEXT":
        needle = key.args[0]
        return _contains(ctx.header_blocks(), needle) or _contains(ctx.body_texts(), needle)
    return False


def _contains(texts: list[str], needle: str) -> bool:
    return any(needle in t for t in texts)


def _match_date(name: str, day: datetime.date, ctx: MessageContext) -> bool:
    if name.startswith("SENT"):
        have = ctx.sent_date()
        name = name[4:]
    else:
        have = ctx.internaldate.date()
    if name == "BEFORE":
        return have < day
    if name == "ON":
        return have == day
    return have >= day


def matches(node: Node, ctx: MessageContext) -> bool:
    """True if the message ``ctx`` satisfies the search tree ``node``."""
    if isinstance(node, Key):
        return _match_key(node, ctx)
    if isinstance(node, And):
        return all(matches(k, ctx) for k in node.keys)
    if isinstance(node, Or):
        return matches(node.left, ctx) or matches(node.right, ctx)
    if isinstance(node, Not):
        return not matches(node.key, ctx)
    if node.uid:
        return node.contains(ctx.uid, ctx.max_uid or ctx.uid)
    return node.contains(ctx.seq, ctx.max_seq or ctx.seq)


def any_leaf(node: Node, test: Callable[[Any], bool]) -> bool:
    """True if ``test`` holds for some leaf (a :class:`Key`, a sequence set)
    of the search tree, walking through AND, OR and NOT."""
    if isinstance(node, And):
        return any(any_leaf(k, test) for k in node.keys)
    if isinstance(node, Or):
        return any_leaf(node.left, test) or any_leaf(node.right, test)
    if isinstance(node, Not):
        return any_leaf(node.key, test)
    return test(node)


def needs_info(node: Node) -> bool:
    """True if matching ``node`` reads the size, internal date or modseq of
    a message (else :class:`MessageContext` may leave them at 0/epoch)."""
    return any_leaf(node, lambda k: isinstance(k, Key) and k.name in _INFO_KEYS)


def needs_header(node: Node) -> bool:
    """True if matching ``node`` may read the top-level header (header and SENT* keys)."""
    return any_leaf(node, lambda k: isinstance(k, Key) and k.name in _HEADER_KEYS)


_CONTENT_EXTRA = frozenset({"HEADER", "SENTBEFORE", "SENTON", "SENTSINCE"})


def needs_content(node: Node) -> bool:
    """True if matching ``node`` may read the message file."""
    return any_leaf(
        node,
        lambda k: isinstance(k, Key) and (k.name in _STRING_KEYS or k.name in _CONTENT_EXTRA),
    )
