"""LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819): parsing the LIST
arguments and choosing what each LIST response says.  No I/O here: the LIST
handler (:mod:`mailsuite.imap.commands.listing`) reads the folders and
subscriptions in a pool thread and passes them in.

``LIST [(selection)] reference pattern|(patterns) [RETURN (options)]``

* Selection options: ``SUBSCRIBED`` (subscribed names, existing or not),
  ``SPECIAL-USE`` (RFC 6154 §5.2: folders with a special use),
  ``RECURSIVEMATCH`` (only with one of those two: also parents whose
  descendants meet the criteria, with ``CHILDINFO``), ``REMOTE`` (accepted;
  there are no remote mailboxes).  Several options must all hold.
* Return options: ``SUBSCRIBED`` (``\\Subscribed``), ``CHILDREN``
  (``\\HasChildren``/``\\HasNoChildren``, always sent anyway),
  ``SPECIAL-USE`` (special-use attributes, always sent anyway),
  ``STATUS (items)`` (RFC 5819: a STATUS response after the LIST response
  of every listed mailbox that exists and meets the selection criteria).
* An unknown option, a repeated ``STATUS`` or ``RECURSIVEMATCH`` alone is
  ``BAD`` (RFC 5258 §3, §3.1).  A repeated option counts once.
* Any extended form (selection list, RETURN or a pattern list) lists names
  that do not exist as ``\\NonExistent`` (§3) and ignores empty patterns;
  the basic form keeps RFC 3501's meaning of ``""`` and ``\\Noselect``.

Which names are listed (§3.3, the table in §3.5): a name matching a pattern
is listed when it meets the selection criteria, or -- with RECURSIVEMATCH --
when a descendant meets them and that descendant matches no pattern (so the
client would not see it otherwise: redundant CHILDINFO is suppressed, the
SHOULD of §3.5).  Without selection options the listed names are the
existing folders plus parents implied by deeper folders (Maildir++ allows
``.a.b`` without ``.a``), the latter ``\\NonExistent \\HasChildren`` (§5
example 11).  Each name is listed once, INBOX first, then by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailsuite.imap import responses
from mailsuite.imap import status as status_items
from mailsuite.imap.parser import ParseError, Token, astring_text
from mailsuite.imap.patterns import DELIMITER, ancestors, matches
from mailsuite.interfaces import FolderInfo

_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_BASE_SELECTION = ("SUBSCRIBED", "SPECIAL-USE")  # what RECURSIVEMATCH can refine
_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
MAX_PATTERNS = 20


@dataclass(frozen=True)
class ListRequest:
    """A parsed LIST command."""

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status: tuple[str, ...] = ()  # STATUS items of RETURN (STATUS (...))
    extended: bool = False

    @property
    def criteria(self) -> tuple[str, ...]:
        """The base selection options in force (CHILDINFO reports these)."""
        return tuple(o for o in _BASE_SELECTION if o in self.selection)


@dataclass
class Entry:
    """One LIST response: ``attrs`` in order, ``childinfo`` the criteria a
    descendant meets, ``status`` True when a STATUS response should follow."""

    name: str
    attrs: list[str] = field(default_factory=list)
    childinfo: tuple[str, ...] = ()
    status: bool = False


def parse(args: Sequence[Token]) -> ListRequest:
    """Parse every form of LIST; raises :class:`ParseError` (``BAD``)."""
    rest = list(args)
    extended = False
    selection: set[str] = set()
    first = rest[0] if rest else None
    if isinstance(first, list):
        extended = True
        selection = {_option(t) for t in first}
        rest.pop(0)
        if not selection <= _SELECTION:
            raise ParseError("Unknown LIST selection option")
        if "RECURSIVEMATCH" in selection and not any(o in selection for o in _BASE_SELECTION):
            raise ParseError("RECURSIVEMATCH needs another selection option")
    returns: set[str] = set()
    status: list[str] = []
    if len(rest) >= 3 and isinstance(rest[-2], str) and rest[-2].upper() == "RETURN":
        extended = True
        returns, status = _return_options(rest[-1])
        rest = rest[:-2]
    if len(rest) != 2:
        raise ParseError("LIST needs a reference and a mailbox pattern")
    reference = astring_text(rest[0], "reference")
    if isinstance(rest[1], list):
        extended = True
        patterns = [astring_text(t, "pattern") for t in rest[1]]
        if not patterns or len(patterns) > MAX_PATTERNS:
            raise ParseError("Invalid pattern list")
    else:
        patterns = [astring_text(rest[1], "pattern")]
    if extended:
        patterns = [p for p in patterns if p]  # §3: empty patterns are ignored
    if "SPECIAL-USE" in selection:
        returns.add("SPECIAL-USE")  # RFC 6154 §3: implied
    if "SUBSCRIBED" in selection:
        returns.add("SUBSCRIBED")  # RFC 5258 §3.1: implied
    return ListRequest(
        reference,
        tuple(patterns),
        frozenset(selection),
        frozenset(returns),
        tuple(status),
        extended,
    )


def _option(token: Token) -> str:
    if not isinstance(token, str):
        raise ParseError("Invalid LIST option")
    return token.upper()


def _return_options(token: Token) -> tuple[set[str], list[str]]:
    if not isinstance(token, list):
        raise ParseError("Invalid RETURN options")
    returns: set[str] = set()
    status: list[str] = []
    items = list(token)
    while items:
        option = _option(items.pop(0))
        if option not in _RETURN:
            raise ParseError("Unknown LIST return option")
        if option == "STATUS":
            if "STATUS" in returns or not items:
                raise ParseError("Invalid STATUS return option")
            status = status_items.parse_items(items.pop(0))
        returns.add(option)
    return returns, status


def select_entries(
    req: ListRequest, folders: Sequence[FolderInfo], subscribed: Iterable[str]
) -> list[Entry]:
    """The LIST responses for ``req`` given the existing ``folders`` and the
    ``subscribed`` names (which may include names that no longer exist)."""
    existing = {f.name: f for f in folders}
    subs = set(subscribed) | {f.name for f in folders if f.subscribed}
    has_children = {a for name in existing for a in ancestors(name)}
    has_children |= {f.name for f in folders if f.has_children}

    def meets(name: str) -> bool:
        if "SUBSCRIBED" in req.selection and name not in subs:
            return False
        if "SPECIAL-USE" in req.selection:
            folder = existing.get(name)
            return folder is not None and bool(folder.special_use)
        return "SUBSCRIBED" in req.selection or name in existing

    full = [req.reference + p for p in req.patterns]

    def matched(name: str) -> bool:
        return any(matches(p, name) for p in full)

    universe = set(existing) | has_children
    if "SUBSCRIBED" in req.selection:
        universe |= subs | {a for name in subs for a in ancestors(name)}
    meeting = {n for n in universe if meets(n)}
    hidden_below: set[str] = set()  # names with a meeting descendant no pattern shows
    if "RECURSIVEMATCH" in req.selection:
        for name in meeting:
            if not matched(name):
                hidden_below.update(ancestors(name))
    out = []
    for name in sorted(universe, key=lambda n: (n != "INBOX", n)):
        if not matched(name):
            continue
        meets_it = name in meeting
        implied = not req.criteria and name not in existing  # an implied parent
        if not (meets_it or implied or name in hidden_below):
            continue
        out.append(_entry(req, name, existing.get(name), name in has_children, name in subs))
        entry = out[-1]
        if name in hidden_below:
            entry.childinfo = req.criteria
        entry.status = bool(req.status) and meets_it and name in existing
    return out


def _entry(
    req: ListRequest, name: str, folder: FolderInfo | None, children: bool, subscribed: bool
) -> Entry:
    attrs = []
    if folder is None:
        attrs.append("\\NonExistent" if req.extended else "\\Noselect")
    attrs.append("\\HasChildren" if children else "\\HasNoChildren")
    if folder is not None and folder.special_use:
        attrs.append(folder.special_use)
    if subscribed and "SUBSCRIBED" in req.returns:
        attrs.append("\\Subscribed")
    return Entry(name, attrs)


def render(entry: Entry) -> bytes:
    """``LIST (attrs) "/" name [("CHILDINFO" (...))]`` without ``* ``."""
    head = f'LIST ({" ".join(entry.attrs)}) "{DELIMITER}" '.encode()
    line = head + responses.astring(entry.name)
    if entry.childinfo:
        crit = " ".join(f'"{c}"' for c in entry.childinfo)
        line += f' ("CHILDINFO" ({crit}))'.encode()
    return line
