"""Adding and removing messages (part of :class:`~mailsuite.storage.mailbox.MaildirMailbox`).

:class:`WriteMixin` implements ``append`` (write to ``tmp/``, fsync, rename
into ``cur/``, fsync the directory, then assign the UID under the
``dovecot-uidlist.lock`` dot-lock), the destination half of ``copy_to``
(``_place_copy``: hard link, or copy when linking fails) and ``expunge``
(unlinks ``\\Deleted`` files and logs them with one modseq under the
modseq dot-lock, taken inside the per-view ``self._lock``).  Quota is checked
before and charged after a write; every change is published to the hub.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from typing import IO

from mailsuite.storage.flags import build_info, split_name
from mailsuite.storage.fsutil import copy_durably, unlink_quiet
from mailsuite.storage.locking import DotLock
from mailsuite.storage.messages import CHUNK, CrlfNormalizer
from mailsuite.storage.viewbase import MailboxBase


class WriteMixin(MailboxBase):
    """APPEND, the destination side of COPY, and EXPUNGE."""

    def expunge(self, uids: Iterable[int] | None = None) -> list[int]:
        """Remove ``\\Deleted`` messages; they are logged with one new modseq
        (for VANISHED, RFC 7162 §3.2.7) under the modseq lock."""
        with self._lock:
            wanted = None if uids is None else set(uids)
            removed: set[int] = set()
            freed = 0
            with self._ms_lock():
                self._sync_log_locked()
                snap = self._snap
                for pos, name in enumerate(snap.files):
                    uid = snap.uids[pos]
                    if wanted is not None and uid not in wanted:
                        continue
                    info = split_name(name)[1] or ""
                    if "T" not in info:
                        continue
                    if self._unlink(name):
                        removed.add(pos)
                        freed += snap.sizes[pos]
                if not removed:
                    self._save()
                    return []
                done = sorted(snap.uids[p] for p in removed)
                self._ctx.syncer.sync(self._cur)
                self._ms.record_locked({}, done)
            self._ctx.quota.add(-freed, -len(removed))
            pending = set(self._expunged)
            self._apply(removed, {}, [])
            self._expunged = pending  # our own expunges are not reported by sync()
            self._dirty = True
            self._save()
            self._ctx.publish(self.name, "expunged", done)
            return done

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(self._cur / name)
            return True
        except FileNotFoundError:
            base, _ = split_name(name)
            current = self._find_base(base)
            if current is None or "T" not in (split_name(current)[1] or ""):
                return False
            try:
                os.unlink(self._cur / current)
                return True
            except FileNotFoundError:
                return False

    def append(
        self,
        source: IO[bytes],
        flags: Iterable[str] = (),
        internaldate: datetime.datetime | None = None,
    ) -> int:
        with self._lock:
            letters = self._letters(flags, create=True)
        tmp = self._tmp / self._ctx.names.new(self._ctx.clock())
        size = copy_durably(source, tmp, CrlfNormalizer(), CHUNK)
        try:
            self._ctx.quota.check(size)
            when = internaldate.timestamp() if internaldate else self._ctx.clock()
            os.utime(tmp, (when, when))
            base = self._ctx.names.new(self._ctx.clock(), size)
            os.rename(tmp, self._cur / f"{base}:2,{build_info(letters)}")
        except BaseException:
            unlink_quiet(tmp)
            raise
        self._ctx.syncer.sync(self._cur)
        uid = self.assign_uids([base])[base]
        self._record_new({uid: "2," + build_info(letters)})
        self._ctx.quota.add(size, 1)
        self._ctx.publish(self.name, "added", [uid])
        return uid

    def assign_uids(self, bases: list[str]) -> dict[str, int]:
        """UIDs for files already durable in ``cur/`` (takes the uidlist lock)."""
        with DotLock(self._uidlist.lock_path, clock=self._ctx.clock):
            self._locked_refresh()
            self._assign_locked(bases)
            return {b: self._uidlist.by_base[b] for b in bases}

    def _place_copy(self, src: MailboxBase, name: str, vsize: int) -> tuple[str, str] | None:
        """Link (or copy) one message of ``src`` into our ``cur/``; returns its
        new base and name tail."""
        info = split_name(name)[1] or ""
        keywords = [k for c in info if "a" <= c <= "z" and (k := src._keywords.flag_of(c))]
        letters = {c for c in info if not "a" <= c <= "z"}
        if keywords:
            letters |= set(self._keywords.letters_for(keywords).values())
        path = src._cur / name
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        base = self._ctx.names.new(self._ctx.clock())
        base += f",S={st.st_size},W={vsize}"
        tmp = self._tmp / base
        try:
            os.link(path, tmp)
        except FileNotFoundError:
            return None
        except OSError:
            with open(path, "rb") as f:
                copy_durably(f, tmp, chunk=CHUNK)
            os.utime(tmp, (st.st_mtime, st.st_mtime))
        os.rename(tmp, self._cur / f"{base}:2,{build_info(letters)}")
        return base, "2," + build_info(letters)
