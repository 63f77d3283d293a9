"""LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with CHILDREN (RFC 3348) and
SPECIAL-USE (RFC 6154) attributes.

The basic RFC 5258 forms clients send even to servers without LIST-EXTENDED
are accepted: selection options ``(SUBSCRIBED)``/``(SPECIAL-USE)`` before
the reference and ``RETURN (...)`` after the pattern.  Wildcard matching is
a linear-space dynamic programme (no regex backtracking).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsuite.imap import responses
from mailsuite.imap.command import AUTHENTICATED, Command, Request, Result, ok
from mailsuite.imap.parser import ParseError, Token, astring_text
from mailsuite.interfaces import FolderInfo

if TYPE_CHECKING:
    from mailsuite.imap.server import IMAPSession

DELIMITER = "/"
_MAX_PATTERNS = 20


def wildcard_match(pattern: str, name: str) -> bool:
    """``*`` matches anything, ``%`` anything but the delimiter.  O(len(p)*len(n))."""
    pattern = _collapse(pattern)
    if sum(1 for c in pattern if c not in "*%") > len(name):
        return False
    row = [True] + [False] * len(name)  # row[j]: pattern so far matches name[:j]
    for pc in pattern:
        new = [False] * (len(name) + 1)
        if pc in "*%":
            new[0] = row[0]
            for j, nc in enumerate(name, 1):
                new[j] = row[j] or (new[j - 1] and (pc == "*" or nc != DELIMITER))
        else:
            for j, nc in enumerate(name, 1):
                new[j] = row[j - 1] and nc == pc
        row = new
        if not any(row):
            return False
    return row[-1]


def _collapse(pattern: str) -> str:
    """Runs of wildcards become one (``*`` if the run holds a ``*``)."""
    out: list[str] = []
    for c in pattern:
        if c in "*%" and out and out[-1] in "*%":
            if c == "*":
                out[-1] = "*"
            continue
        out.append(c)
    return "".join(out)


def _matches(pattern: str, name: str) -> bool:
    """Wildcard match with ``INBOX`` case-insensitive (RFC 3501 §5.1)."""
    if pattern[:5].upper() == "INBOX" and name[:5] == "INBOX":
        pattern = "INBOX" + pattern[5:]
    return wildcard_match(pattern, name)


def _parse_list_args(args: list[Token]) -> tuple[set[str], str, list[str], set[str]]:
    args = list(args)
    selection: set[str] = set()
    first = args[0] if args else None
    if isinstance(first, list):
        selection = {_opt(t) for t in first}
        args.pop(0)
    returns: set[str] = set()
    if len(args) >= 3 and isinstance(args[-2], str) and args[-2].upper() == "RETURN":
        options = args[-1]
        if not isinstance(options, list):
            raise ParseError("Invalid RETURN options")
        returns = {_opt(t) for t in options}
        args = args[:-2]
    if len(args) != 2:
        raise ParseError("LIST needs a reference and a mailbox pattern")
    reference = astring_text(args[0], "reference")
    if isinstance(args[1], list):
        patterns = [astring_text(t, "pattern") for t in args[1]]
        if not patterns or len(patterns) > _MAX_PATTERNS:
            raise ParseError("Invalid pattern list")
    else:
        patterns = [astring_text(args[1], "pattern")]
    return selection, reference, patterns, returns


def _opt(token: Token) -> str:
    if not isinstance(token, str):
        raise ParseError("Invalid LIST option")
    return token.upper()


def list_(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.8."""
    selection, reference, patterns, returns = _parse_list_args(req.args)
    if patterns == [""]:
        s.untagged(f'LIST (\\Noselect) "{DELIMITER}" ""')
        return ok("LIST completed")
    subscribed_only = "SUBSCRIBED" in selection
    special_only = "SPECIAL-USE" in selection
    d = s.run(s.account.folders)

    def answer(folders: list[FolderInfo]) -> Result:
        for folder, attrs in _listing(folders, reference, patterns, subscribed_only):
            if special_only and not folder.special_use:
                continue
            show_sub = subscribed_only or "SUBSCRIBED" in returns
            if show_sub and folder.subscribed:
                attrs = [*attrs, "\\Subscribed"]
            _send(s, "LIST", attrs, folder.name)
        return ok("LIST completed")

    return d.addCallback(answer)


def lsub(s: IMAPSession, req: Request) -> Any:
    """RFC 3501 §6.3.9: subscribed names; a matching parent that is not
    subscribed itself is shown ``\\Noselect`` when ``%`` hides the child."""
    if len(req.args) != 2:
        raise ParseError("LSUB needs a reference and a mailbox pattern")
    reference = astring_text(req.args[0], "reference")
    pattern = astring_text(req.args[1], "pattern")
    d = s.run(s.account.folders)

    def answer(folders: list[FolderInfo]) -> Result:
        full = reference + pattern
        subscribed = [f for f in folders if f.subscribed]
        shown = set()
        for f in subscribed:
            if _matches(full, f.name):
                _send(s, "LSUB", [], f.name)
                shown.add(f.name)
        for f in subscribed:
            parts = f.name.split(DELIMITER)
            for i in range(1, len(parts)):
                parent = DELIMITER.join(parts[:i])
                if parent not in shown and _matches(full, parent) and "%" in full:
                    _send(s, "LSUB", ["\\Noselect"], parent)
                    shown.add(parent)
        return ok("LSUB completed")

    return d.addCallback(answer)


def _listing(
    folders: list[FolderInfo], reference: str, patterns: list[str], subscribed_only: bool
) -> list[tuple[FolderInfo, list[str]]]:
    by_name = {f.name: f for f in folders}
    # parents implied by deeper names (Maildir++ allows .a.b without .a)
    for name in list(by_name):
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            parent = DELIMITER.join(parts[:i])
            if parent not in by_name:
                by_name[parent] = FolderInfo(parent, None, True, False)
    implied = set(by_name) - {f.name for f in folders}
    parents = {n.rsplit(DELIMITER, 1)[0] for n in by_name if DELIMITER in n}
    out = []
    for name in sorted(by_name, key=lambda n: (n != "INBOX", n)):
        folder = by_name[name]
        if subscribed_only and not folder.subscribed:
            continue
        if not any(_matches(reference + p, name) for p in patterns):
            continue
        attrs = []
        if name in implied:
            attrs.append("\\NonExistent" if subscribed_only else "\\Noselect")
        has_children = folder.has_children or name in parents
        attrs.append("\\HasChildren" if has_children else "\\HasNoChildren")
        if folder.special_use:
            attrs.append(folder.special_use)
        out.append((folder, attrs))
    return out


def _send(s: IMAPSession, what: str, attrs: list[str], name: str) -> None:
    head = f'{what} ({" ".join(attrs)}) "{DELIMITER}" '.encode()
    s.untagged(head + responses.astring(name))


COMMANDS = (
    Command("LIST", list_, AUTHENTICATED),
    Command("LSUB", lsub, AUTHENTICATED),
)
