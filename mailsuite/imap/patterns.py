"""LIST mailbox patterns (RFC 3501 §6.3.8): ``*`` matches anything, ``%``
anything but the hierarchy delimiter; ``INBOX`` matches case-insensitively.

Matching is a linear-space dynamic programme over pattern x name (no regex
backtracking, so a hostile pattern such as ``*a*a*a*...`` costs
O(len(pattern) * len(name)), never exponential time).
"""

from __future__ import annotations

DELIMITER = "/"


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


def matches(pattern: str, name: str) -> bool:
    """Wildcard match with ``INBOX`` case-insensitive (RFC 3501 §5.1)."""
    if pattern[:5].upper() == "INBOX" and name[:5] == "INBOX":
        pattern = "INBOX" + pattern[5:]
    return wildcard_match(pattern, name)


def ancestors(name: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]
