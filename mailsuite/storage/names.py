"""Folder names: validation and the IMAP name <-> Maildir++ directory mapping.

Clients see ``/`` as the hierarchy delimiter; on disk a folder ``a/b`` is the
directory ``.a.b`` under the account root (Maildir++), INBOX is the root
itself.  Names stay in IMAP modified UTF-7 (RFC 3501 §5.1.3) on disk, exactly
as the client sent them, so Dovecot (``LAYOUT=maildir++`` with separator
``/``) reads the same tree.

Rejected (``MailError(BAD_NAME)``), never rewritten into another name:
NUL and other control characters, invalid modified UTF-7, empty components
(leading/trailing ``/``, ``a//b``), ``.`` and ``..`` components, any ``.``
inside a component (it is the on-disk separator: ``a.b`` would silently
become ``a/b``; Dovecot refuses it the same way), the LIST wildcards ``*`` and
``%``, and names whose UTF-8 form or on-disk directory name exceed 255 bytes.
``INBOX`` is case-insensitive, also as the first component (``inbox/x``).
"""

from __future__ import annotations

import base64
import binascii

from mailsuite.errors import ErrorKind, MailError

MAX_NAME_BYTES = 255
_FORBIDDEN = frozenset("*%.")


def _bad(text: str = "Invalid mailbox name") -> MailError:
    return MailError(ErrorKind.BAD_NAME, text)


def mutf7_decode(name: str) -> str:
    """Decode IMAP modified UTF-7; raise ``ValueError`` when it is not valid.

    Strict: printable ASCII must appear as itself, ``&`` as ``&-``, shifted runs
    use the ``,`` base64 alphabet without padding, decode to whole UTF-16 code
    units with zero padding bits, and contain no unpaired surrogate.
    """
    out: list[str] = []
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if not " " <= ch <= "~":
            raise ValueError("non-printable or non-ASCII character")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated shift")
        run = name[i + 1 : end]
        i = end + 1
        if not run:
            out.append("&")
            continue
        out.append(_decode_run(run))
        if i < n and name[i] == "&" and name[i + 1 : i + 2] != "-":
            raise ValueError("adjacent shifted runs")
    return "".join(out)


def _decode_run(run: str) -> str:
    if any(c in "=/" for c in run):
        raise ValueError("bad base64 length or alphabet")
    padded = run.replace(",", "/") + "=" * (-len(run) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc
    if len(raw) % 2 or base64.b64encode(raw).decode().rstrip("=").replace("/", ",") != run:
        raise ValueError("bad padding bits")
    text = raw.decode("utf-16-be", errors="strict")
    if any(" " <= c <= "~" for c in text):
        raise ValueError("printable ASCII must not be encoded")
    return text


def mutf7_encode(text: str) -> str:
    """Encode a Unicode name in IMAP modified UTF-7 (for tools and tests)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in text:
        if " " <= ch <= "~":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def normalize(name: str) -> str:
    """Validate an IMAP folder name and return its canonical form.

    ``INBOX`` (any case) becomes ``INBOX``, also as a first component.
    Raises ``MailError(BAD_NAME)`` for every shape listed in the module doc.
    """
    if not name:
        raise _bad()
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise _bad("Mailbox name too long")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise _bad()
        if any(c in _FORBIDDEN or not " " <= c <= "~" for c in part):
            raise _bad()
        try:
            mutf7_decode(part)
        except ValueError:
            raise _bad() from None
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    canonical = "/".join(parts)
    if len(to_disk(canonical)) > MAX_NAME_BYTES:
        raise _bad("Mailbox name too long")
    return canonical


def to_disk(canonical: str) -> str:
    """Directory name under the account root ("" for INBOX).  Input must be normalized."""
    if canonical == "INBOX":
        return ""
    return "." + canonical.replace("/", ".")


def from_disk(dirname: str) -> str | None:
    """IMAP name of a Maildir++ folder directory, or None if it is not a valid folder name."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    name = dirname[1:].replace(".", "/")
    try:
        canonical = normalize(name)
    except MailError:
        return None
    return canonical if canonical != "INBOX" else None
