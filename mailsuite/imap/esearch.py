"""ESEARCH (RFC 4731): ``SEARCH RETURN (MIN MAX ALL COUNT) keys...``.

Contract for the SEARCH handler::

    options, keys = split_return(req.args)   # options None: plain SEARCH
    ...                                      # match ``keys`` as usual
    line = render(req.tag, req.uid, numbers, options)   # one ESEARCH line

* ``RETURN`` comes first, before ``CHARSET`` (RFC 4466 §2.6 ``search``).
  ``RETURN ()`` means ``(ALL)`` (RFC 4731 §3.1); an unknown option or a
  missing list raises :class:`ParseError` (``BAD``).
* The response is always sent, even with no match: then MIN, MAX and ALL
  are left out and ``COUNT 0`` stays (when asked for).  ``ALL`` uses the
  compact sequence-set form (``2,10:11``).  UID SEARCH adds the ``UID``
  indicator, and every number is then a UID.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailsuite.imap.parser import ParseError, Token
from mailsuite.imap.responses import sequence_set

#: Result options in the order they are rendered.
OPTIONS = ("MIN", "MAX", "ALL", "COUNT")


def split_return(args: Sequence[Token]) -> tuple[frozenset[str] | None, list[Token]]:
    """(result options or None without ``RETURN``, the remaining arguments)."""
    rest = list(args)
    if not rest or not isinstance(rest[0], str) or rest[0].upper() != "RETURN":
        return None, rest
    if len(rest) < 2 or not isinstance(rest[1], list):
        raise ParseError("RETURN needs a list of result options")
    options = set()
    for item in rest[1]:
        if not isinstance(item, str) or item.upper() not in OPTIONS:
            raise ParseError("Unknown SEARCH result option")
        options.add(item.upper())
    return frozenset(options or {"ALL"}), rest[2:]


def render(tag: str, uid: bool, numbers: Sequence[int], options: frozenset[str]) -> str:
    """The ``ESEARCH`` response text (without ``* ``) for ascending ``numbers``."""
    parts = [f'ESEARCH (TAG "{tag}")']
    if uid:
        parts.append("UID")
    for option in OPTIONS:
        if option not in options:
            continue
        if option == "COUNT":
            parts.append(f"COUNT {len(numbers)}")
        elif not numbers:
            continue
        elif option == "MIN":
            parts.append(f"MIN {numbers[0]}")
        elif option == "MAX":
            parts.append(f"MAX {numbers[-1]}")
        else:
            parts.append(f"ALL {sequence_set(numbers)}")
    return " ".join(parts)
