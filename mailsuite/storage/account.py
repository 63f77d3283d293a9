"""One account's Maildir++ tree: folders, subscriptions, quota usage.

Layout (DESIGN.md §2): ``<root>`` is INBOX (``cur new tmp``), every other
folder is a ``.Name`` directory beside them (``.a.b`` for ``a/b``) holding
``cur new tmp`` and an empty ``maildirfolder`` file (Maildir++).  New
accounts get Sent, Drafts, Trash, Junk and Archive, reported with their
RFC 6154 roles (by name, top level).  Subscriptions live in ``subscriptions``
in Dovecot's version-2 format (``V\\t2``, a blank line, one name per line with
``\\t`` as hierarchy separator, names in modified UTF-7).

Folder creation is atomic (built under ``tmp/`` then renamed into place);
deletion renames the directory to ``..mailsuite-trash-*`` (invisible to
folder listings) before removing it.  Changes are published to the hub as
``MailboxChange(kind="folders")``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import FolderInfo
from mailsuite.storage.fsutil import atomic_write, fsync_dir
from mailsuite.storage.locking import DotLock
from mailsuite.storage.mailbox import FolderContext, MaildirMailbox
from mailsuite.storage.names import from_disk, normalize, to_disk
from mailsuite.storage.quota import MaildirSize

SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
SUBSCRIPTIONS_FILE = "subscriptions"
TRASH_PREFIX = "..mailsuite-trash-"


class MaildirAccount:
    """Implements :class:`mailsuite.interfaces.Account`.  All methods block."""

    def __init__(self, address: str, root: Path, ctx: FolderContext, quota: MaildirSize) -> None:
        self.address = address
        self.root = root
        self._ctx = ctx
        self.quota = quota

    # ------------------------------------------------------------ helpers
    def _path(self, canonical: str) -> Path:
        disk = to_disk(canonical)
        return self.root / disk if disk else self.root

    def _exists(self, canonical: str) -> bool:
        return (self._path(canonical) / "cur").is_dir()

    def _publish(self) -> None:
        self._ctx.publish("", "folders", ())

    # ------------------------------------------------------------ creation
    def ensure_created(self) -> None:
        fresh = not (self.root / "cur").is_dir()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("tmp", "new", "cur"):  # cur last: it marks a complete maildir
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)
        created = False
        for name in SPECIAL_USE:
            if not self._exists(name):
                try:
                    self._make_folder(name)
                    created = True
                except MailError as exc:
                    if exc.kind is not ErrorKind.ALREADY_EXISTS:  # a concurrent creator won
                        raise
        if fresh:
            self._edit_subscriptions(add=["INBOX", *SPECIAL_USE], remove=[])
        if fresh or created:
            fsync_dir(self.root)
            self._publish()

    def _make_folder(self, canonical: str) -> None:
        """Build the folder under ``tmp/`` and rename it into place (atomic)."""
        target = self._path(canonical)
        staging = self.root / "tmp" / f"newfolder.{self._ctx.names.new(self._ctx.clock())}"
        staging.mkdir(mode=0o700)
        try:
            for sub in ("cur", "new", "tmp"):
                (staging / sub).mkdir(mode=0o700)
            (staging / "maildirfolder").touch(mode=0o600)
            try:
                os.rename(staging, target)
            except OSError as exc:
                if target.exists():
                    raise MailError(ErrorKind.ALREADY_EXISTS) from None
                raise MailError(ErrorKind.TEMPORARY, detail=str(exc)) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def create_folder(self, name: str) -> None:
        canonical = normalize(name)
        if canonical == "INBOX" or self._exists(canonical):
            raise MailError(ErrorKind.ALREADY_EXISTS)
        if not (self.root / "cur").is_dir():
            self.ensure_created()
            if self._exists(canonical):
                raise MailError(ErrorKind.ALREADY_EXISTS)
        self._make_folder(canonical)
        fsync_dir(self.root)
        self._publish()

    # ------------------------------------------------------------ listing
    def _folder_names(self) -> list[str]:
        try:
            entries = os.listdir(self.root)
        except FileNotFoundError:
            return []
        names = ["INBOX"] if (self.root / "cur").is_dir() else []
        for entry in entries:
            canonical = from_disk(entry)
            if canonical is not None and (self.root / entry).is_dir():
                names.append(canonical)
        return names

    def folders(self) -> list[FolderInfo]:
        names = self._folder_names()
        parents = {n.rsplit("/", 1)[0] for n in names if "/" in n}
        for n in names:  # every ancestor, also of missing intermediates
            parts = n.split("/")
            parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
        subscribed = set(self._read_subscriptions())
        return [
            FolderInfo(
                name=n,
                special_use=SPECIAL_USE.get(n),
                has_children=n in parents,
                subscribed=n in subscribed,
            )
            for n in sorted(names, key=lambda x: (x != "INBOX", x))
        ]

    def open(self, name: str) -> MaildirMailbox:
        canonical = normalize(name)
        if canonical == "INBOX" and not (self.root / "cur").is_dir():
            self.ensure_created()
        path = self._path(canonical)
        if not path.is_dir():
            raise MailError(ErrorKind.NONEXISTENT)
        return MaildirMailbox(self._ctx, canonical, path)

    # ------------------------------------------------------------ delete / rename
    def delete_folder(self, name: str) -> None:
        canonical = normalize(name)
        if canonical == "INBOX":
            raise MailError(ErrorKind.BAD_NAME, "INBOX cannot be deleted")
        path = self._path(canonical)
        trash = self.root / f"{TRASH_PREFIX}{self._ctx.names.new(self._ctx.clock())}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            raise MailError(ErrorKind.NONEXISTENT) from None
        fsync_dir(self.root)
        for entry in os.listdir(self.root):
            if entry.startswith(TRASH_PREFIX):
                shutil.rmtree(self.root / entry, ignore_errors=True)
        self.quota.recount()
        self._publish()

    def rename_folder(self, old: str, new: str) -> None:
        src, dst = normalize(old), normalize(new)
        if dst == "INBOX" or self._exists(dst):
            raise MailError(ErrorKind.ALREADY_EXISTS)
        if dst.startswith(src + "/") or src == dst:
            raise MailError(ErrorKind.BAD_NAME, "Cannot rename a mailbox into itself")
        if not self._exists(src):
            raise MailError(ErrorKind.NONEXISTENT)
        if src == "INBOX":
            self._rename_inbox(dst)
        else:
            moves = [
                (n, dst + n[len(src) :])
                for n in self._folder_names()
                if n == src or n.startswith(src + "/")
            ]
            for _, target in moves:
                normalize(target)  # the new names must be valid too (length)
                if self._path(target).exists():
                    raise MailError(ErrorKind.ALREADY_EXISTS)
            for a, b in moves:
                os.rename(self._path(a), self._path(b))
            self._rename_subscriptions(moves)
        fsync_dir(self.root)
        self._publish()

    def _rename_inbox(self, dst: str) -> None:
        """RFC 3501 §6.3.5: move INBOX's messages to a new folder; INBOX stays, empty."""
        self._make_folder(dst)
        target = self._path(dst) / "cur"
        for sub in ("new", "cur"):
            for entry in os.listdir(self.root / sub):
                if entry.startswith("."):
                    continue
                dest = entry if ":" in entry else entry + ":2,"
                try:
                    os.rename(self.root / sub / entry, target / dest)
                except FileNotFoundError:
                    continue
        fsync_dir(target)

    # ------------------------------------------------------------ subscriptions
    def _read_subscriptions(self) -> list[str]:
        try:
            text = (self.root / SUBSCRIPTIONS_FILE).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        lines = text.split("\n")
        if lines and lines[0].startswith("V\t"):
            names = [line.replace("\t", "/") for line in lines[1:] if line]
        else:
            names = [line for line in lines if line]
        out = []
        for n in names:
            try:
                out.append(normalize(n))
            except MailError:
                continue
        return out

    def _edit_subscriptions(self, add: list[str], remove: list[str]) -> None:
        with DotLock(self.root / (SUBSCRIPTIONS_FILE + ".lock"), clock=self._ctx.clock):
            names = self._read_subscriptions()
            names = [n for n in names if n not in remove]
            names += [n for n in add if n not in names]
            body = "V\t2\n\n" + "".join(n.replace("/", "\t") + "\n" for n in names)
            atomic_write(self.root / SUBSCRIPTIONS_FILE, body.encode("utf-8"))

    def _rename_subscriptions(self, moves: list[tuple[str, str]]) -> None:
        current = set(self._read_subscriptions())
        old = [a for a, _ in moves if a in current]
        if old:
            mapping = dict(moves)
            self._edit_subscriptions(add=[mapping[a] for a in old], remove=old)

    def subscriptions(self) -> list[str]:
        """Every subscribed name, including names whose folder no longer
        exists (RFC 3501 §6.3.6 keeps them; LIST-EXTENDED shows them as
        ``\\NonExistent``, RFC 5258 §3.1).  Blocking; reads need no lock."""
        return self._read_subscriptions()

    def subscribe(self, name: str, subscribed: bool) -> None:
        canonical = normalize(name)
        if not (self.root / "cur").is_dir():
            self.ensure_created()
        if subscribed:
            self._edit_subscriptions(add=[canonical], remove=[])
        else:
            self._edit_subscriptions(add=[], remove=[canonical])

    # ------------------------------------------------------------ quota
    def usage(self) -> tuple[int, int]:
        """(bytes, messages) used, from ``maildirsize`` (recounted when stale)."""
        return self.quota.usage()
