"""Flag changes (STORE) of a view (part of :class:`~mailsuite.storage.mailbox.MaildirMailbox`).

:class:`FlagStoreMixin` turns IMAP flags into Maildir info letters (keywords
through ``dovecot-keywords``) and renames files in ``cur/`` to their new
flags, following a rename by another process once.  ``store_flags*`` take the
per-view ``self._lock`` and then the modseq dot-lock, under which the
UNCHANGEDSINCE test (RFC 7162 §3.1.3), the renames and the modseq records
happen atomically against other mailsuite writers; ``_store_locked`` expects
both held.  Own changes are published to the hub and not reported by the
next ``sync()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import StoreResult
from mailsuite.storage.flags import (
    FLAG_TO_LETTER,
    build_info,
    known_letter,
    split_name,
    validate_flag,
)
from mailsuite.storage.modseq import tail_of
from mailsuite.storage.viewbase import MailboxBase


class FlagStoreMixin(MailboxBase):
    """STORE: flag letters, renames and their modseqs."""

    def _letters(self, flags: Iterable[str], create: bool) -> set[str]:
        letters: set[str] = set()
        keywords: list[str] = []
        for flag in flags:
            flag = validate_flag(flag)
            if flag == "\\Recent":
                continue
            letter = FLAG_TO_LETTER.get(flag.lower())
            if letter is not None:
                letters.add(letter)
            else:
                keywords.append(flag)
        if keywords:
            if create:
                letters.update(self._keywords.letters_for(keywords).values())
            else:
                self._keywords.refresh()
                letters.update(x for k in keywords if (x := self._keywords.letter_of(k)))
        return letters

    def store_flags(
        self, uids: Iterable[int], flags: Iterable[str], mode: str
    ) -> dict[int, frozenset[str]]:
        """Unconditional STORE; returns the new flags of the messages that exist."""
        done = self.store_flags_conditional(uids, flags, mode)
        return {uid: fl for uid, (fl, _) in done.messages.items()}

    def store_flags_conditional(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: str,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """STORE (RFC 3501 §6.4.6) with UNCHANGEDSINCE (RFC 7162 §3.1.3).

        ``mode`` is "set", "add" or "remove".  Runs under the modseq lock, so
        the test and the change are atomic against other mailsuite views and
        processes (not against Dovecot, which does not take that lock; a
        foreign rename found on the way is recorded with this call's modseq).
        """
        if mode not in ("set", "add", "remove"):
            raise MailError(ErrorKind.BAD_INPUT, "Invalid flag change")
        with self._lock:
            letters = self._letters(flags, create=mode != "remove")
            with self._ms_lock():
                self._sync_log_locked()
                cur_before = self._cur_mtime()
                passed, changed, modified = self._store_locked(
                    dict.fromkeys(uids), letters, mode, unchanged_since
                )
                if changed:
                    self._own_cur_change(cur_before)
            # No index save here: it costs ~25 ms on 100k messages and buys
            # nothing (cur/ changed, so the next open lists it anyway); the
            # next sync() or expunge() saves.
            if changed:
                self._ctx.publish(self.name, "flags", changed)
            get = self._ms.modseq_of
            return StoreResult({u: (fl, get(u)) for u, fl in passed.items()}, changed, modified)

    def _store_locked(
        self, uids: Iterable[int], letters: set[str], mode: str, unchanged_since: int | None
    ) -> tuple[dict[int, frozenset[str]], list[int], list[int]]:
        ms = self._ms
        passed: dict[int, frozenset[str]] = {}
        changed: list[int] = []
        modified: list[int] = []
        record: dict[int, str] = {}
        old_files = self._snap.files
        files = list(old_files)
        moved: set[int] = set()

        def on_moved(uid: int, found: str) -> bool:
            """The file moved under us: a foreign change the log lacks fails
            the UNCHANGEDSINCE test (and gets this call's modseq)."""
            moved.add(uid)
            tail = tail_of(found)
            if unchanged_since is None or ms.accounts_for(uid, tail, renamed=True):
                return True
            record[uid] = tail
            modified.append(uid)
            return False

        for uid in uids:
            pos = self._pos(uid)
            if pos is None:
                continue
            if unchanged_since is not None and ms.modseq_of(uid) > unchanged_since:
                modified.append(uid)
                continue
            name = self._rename_flags(files, pos, letters, mode, uid, on_moved)
            if name is None:
                continue
            if name != old_files[pos]:
                changed.append(uid)
                tail = tail_of(name)
                # our own rename is new to the log; a moved file may be known
                if uid not in moved or not ms.accounts_for(uid, tail, renamed=True):
                    record[uid] = tail
            passed[uid] = self._flags_of_name(name)
        if record:
            ms.record_locked(record, ())
        if changed or record:
            self._snap.files = files
            self._by_name = self._by_base = None
            self._dirty = True
        return passed, sorted(changed), sorted(modified)

    def _rename_flags(
        self,
        files: list[str],
        pos: int,
        letters: set[str],
        mode: str,
        uid: int = 0,
        moved: Callable[[int, str], bool] | None = None,
    ) -> str | None:
        """Rename one file to its new flags; follows a rename by another process
        once (``moved(uid, found_name)`` False: leave it, return None)."""
        name: str | None = files[pos]
        for attempt in range(2):
            if name is None:
                return None
            if attempt and moved is not None and not moved(uid, name):
                files[pos] = name
                return None
            base, info = split_name(name)
            have = set(info or "")
            if mode == "set":
                want = {c for c in have if not known_letter(c, self._keywords)} | letters
            elif mode == "add":
                want = have | letters
            else:
                want = have - letters
            new_info = build_info(want)
            if info == new_info:
                files[pos] = name
                return name
            new_name = f"{base}:2,{new_info}"
            try:
                os.rename(f"{self._cur_s}/{name}", f"{self._cur_s}/{new_name}")
            except FileNotFoundError:
                name = self._find_base(base)
                continue
            files[pos] = new_name
            return new_name
        return None

    def _find_base(self, base: str) -> str | None:
        """The current name of a file whose flags another process changed."""
        for name in os.listdir(self._cur):
            if name.partition(":")[0] == base:
                return name
        return None
