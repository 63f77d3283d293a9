"""Shared helpers: the Dovecot reference answers in ../shared/testdata."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mailsuite.imap.fetchrender import FetchItem
from mailsuite.mime.sections import parse_section

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "testdata"
TESTDATA = Path(os.environ.get("MAILSUITE_TESTDATA", _DEFAULT))
_ITEM_RE = re.compile(
    r"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[(.*)\](?:<(\d+)\.(\d+)>)?$"
)
_LITERAL_RE = re.compile(r"~?\{(\d+)\}\r\n")


@functools.cache
def answers() -> dict[str, Any]:
    path = TESTDATA / "dovecot-answers.json"
    if not path.exists():
        pytest.skip(f"reference answers not found at {path}")
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@functools.cache
def message(uid: int) -> bytes:
    """The message with ``uid``, normalised to CRLF as the README says."""
    name = answers()["uid_to_file"][str(uid)]
    raw = (TESTDATA / "messages" / name).read_bytes()
    return re.sub(rb"\r?\n", b"\r\n", raw)


def available() -> bool:
    return (TESTDATA / "dovecot-answers.json").exists()


def searches() -> list[str]:
    """The SEARCH queries, or [] when the data is missing (tests then skip)."""
    return list(answers()["searches"]) if available() else []


def uids() -> list[int]:
    return list(range(1, 50))


def parse_item(text: str) -> FetchItem:
    """A FETCH item of the answers file as a FetchItem."""
    m = _ITEM_RE.match(text)
    if m is None:
        return FetchItem(text)
    kind, sec = m.group(1), m.group(2)
    spec = parse_section(sec)
    part = (int(m.group(3)), int(m.group(4))) if m.group(3) else None
    name = kind.replace(".PEEK", "")
    return FetchItem(name, sec, spec.part, spec.specifier, spec.fields, part, "PEEK" in kind)


def hash_literals(text: str) -> str:
    """Replace literals over 8 KiB by ``<N octets, sha256 HEX>`` (README)."""
    out = []
    pos = 0
    while True:
        m = _LITERAL_RE.search(text, pos)
        if m is None:
            out.append(text[pos:])
            return "".join(out)
        size = int(m.group(1))
        out.append(text[pos : m.end()])
        data = text[m.end() : m.end() + size]
        if size > 8192:
            digest = hashlib.sha256(data.encode("latin-1")).hexdigest()
            out.append(f"<{size} octets, sha256 {digest}>")
        else:
            out.append(data)
        pos = m.end() + size


def tokens(text: str) -> list[Any]:
    """A small IMAP tokenizer for the search queries of the answers file.

    Atoms become ``str``, quoted strings ``bytes`` (the file holds them as
    latin-1 text), parenthesised lists ``list``.
    """
    out: list[Any] = []
    stack = [out]
    i = 0
    while i < len(text):
        c = text[i]
        if c == " ":
            i += 1
        elif c == "(":
            new: list[Any] = []
            stack[-1].append(new)
            stack.append(new)
            i += 1
        elif c == ")":
            stack.pop()
            i += 1
        elif c == '"':
            j = i + 1
            buf = bytearray()
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                buf += text[j].encode("latin-1")
                j += 1
            stack[-1].append(bytes(buf))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in " ()":
                j += 1
            stack[-1].append(text[i:j])
            i = j
    return out
