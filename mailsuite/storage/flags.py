"""Maildir flags: the ``:2,`` info of file names and the ``dovecot-keywords`` file.

System flags (maildir spec): D=\\Draft F=\\Flagged P=$Forwarded (passed)
R=\\Answered S=\\Seen T=\\Deleted.  Keywords use the letters a-z; letter
``chr(97 + i)`` is the keyword on line ``i`` of ``dovecot-keywords``
("<i> <name>" per line, Dovecot's format).  Letters of the info that we do
not know (other capitals, digits, unmapped lowercase) are preserved when we
rename a file and are never reported as flags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from mailsuite.errors import ErrorKind, MailError
from mailsuite.storage.fsutil import atomic_write
from mailsuite.storage.locking import DotLock

LETTER_TO_FLAG = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
FLAG_TO_LETTER = {v.lower(): k for k, v in LETTER_TO_FLAG.items()}
KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26
_ATOM_SPECIALS = re.compile(r'[(){ %*"\\\]\x00-\x1f\x7f-\uffff]')


def split_name(filename: str) -> tuple[str, str | None]:
    """``base:2,FS`` -> (``base``, ``FS``); a name without ``:2,`` -> (its base, None).

    The base ends at the first ``:`` (what ``dovecot-uidlist`` records).
    """
    colon = filename.find(":")
    if colon < 0:
        return filename, None
    info = filename[colon + 1 :]
    return filename[:colon], info[2:] if info.startswith("2,") else None


def vsize_from_base(base: str) -> int | None:
    """The ``,W=`` (else ``,S=``) size recorded in a base name, if any."""
    size = None
    for field in base.split(",")[1:]:
        if field.startswith("W=") and field[2:].isdigit():
            return int(field[2:])
        if field.startswith("S=") and field[2:].isdigit():
            size = int(field[2:])
    return size


def psize_from_base(base: str) -> int | None:
    """The ``,S=`` (file size) recorded in a base name, if any."""
    for field in base.split(",")[1:]:
        if field.startswith("S=") and field[2:].isdigit():
            return int(field[2:])
    return None


def validate_flag(flag: str) -> str:
    """Return the canonical spelling of a client flag; raise BAD_INPUT if invalid.

    ``\\Recent`` is returned as is (callers ignore it: RFC 3501 §2.3.2).
    """
    if flag.startswith("\\"):
        lowered = flag.lower()
        if lowered == "\\recent":
            return "\\Recent"
        if lowered in FLAG_TO_LETTER and lowered != "$forwarded":
            return LETTER_TO_FLAG[FLAG_TO_LETTER[lowered]]
        raise MailError(ErrorKind.BAD_INPUT, "Invalid system flag")
    if not flag or _ATOM_SPECIALS.search(flag):
        raise MailError(ErrorKind.BAD_INPUT, "Invalid keyword")
    if flag.lower() == "$forwarded":
        return "$Forwarded"
    return flag


class Keywords:
    """The keyword <-> letter map of one folder, re-read when the file changes.

    ``letters_for`` adds missing keywords under ``dovecot-keywords.lock``.
    Raises ``MailError(BAD_INPUT)`` when a folder would need a 27th keyword.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / KEYWORDS_FILE
        self._sig: tuple[int, int, int] | None = None
        self.names: list[str | None] = []
        self._by_lower: dict[str, int] = {}

    def refresh(self) -> bool:
        """Re-read if the file changed; True if the map changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            changed = bool(self.names)
            self._sig, self.names, self._by_lower = None, [], {}
            return changed
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._sig:
            return False
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return self.refresh()
        names: list[str | None] = [None] * MAX_KEYWORDS
        for line in text.splitlines():
            idx, _, name = line.partition(" ")
            if idx.isdigit() and int(idx) < MAX_KEYWORDS and name:
                names[int(idx)] = name
        while names and names[-1] is None:
            names.pop()
        changed = names != self.names
        self._sig, self.names = sig, names
        self._by_lower = {n.lower(): i for i, n in enumerate(names) if n is not None}
        return changed

    def flag_of(self, letter: str) -> str | None:
        i = ord(letter) - 97
        return self.names[i] if 0 <= i < len(self.names) else None

    def letter_of(self, keyword: str) -> str | None:
        i = self._by_lower.get(keyword.lower())
        return None if i is None else chr(97 + i)

    def letters_for(self, keywords: Iterable[str]) -> dict[str, str]:
        """Map each keyword to its letter, adding new ones to the file (locked)."""
        wanted = list(keywords)
        self.refresh()
        if all(self.letter_of(k) is not None for k in wanted):
            return {k: self.letter_of(k) or "" for k in wanted}
        with DotLock(self.path.with_name(KEYWORDS_FILE + ".lock")):
            self._sig = None
            self.refresh()
            names = list(self.names)
            for k in wanted:
                if self.letter_of(k) is None and k.lower() not in (n.lower() for n in names if n):
                    slot = next((i for i, n in enumerate(names) if n is None), len(names))
                    if slot >= MAX_KEYWORDS:
                        raise MailError(ErrorKind.BAD_INPUT, "Too many keywords in this mailbox")
                    if slot == len(names):
                        names.append(k)
                    else:
                        names[slot] = k
            text = "".join(f"{i} {n}\n" for i, n in enumerate(names) if n is not None)
            atomic_write(self.path, text.encode("utf-8"))
            self._sig = None
            self.refresh()
        return {k: self.letter_of(k) or "" for k in wanted}


def info_to_flags(info: str, keywords: Keywords) -> frozenset[str]:
    """Flags named by the letters of a ``:2,`` info (unknown letters ignored)."""
    out = []
    for ch in info:
        flag = LETTER_TO_FLAG.get(ch)
        if flag is None and "a" <= ch <= "z":
            flag = keywords.flag_of(ch)
        if flag is not None:
            out.append(flag)
    return frozenset(out)


def known_letter(ch: str, keywords: Keywords) -> bool:
    return ch in LETTER_TO_FLAG or ("a" <= ch <= "z" and keywords.flag_of(ch) is not None)


def build_info(letters: Iterable[str]) -> str:
    """Letters sorted in ASCII order, as the maildir spec requires."""
    return "".join(sorted(set(letters)))
