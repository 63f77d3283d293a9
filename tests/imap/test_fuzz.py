"""Hypothesis fuzzing of the command loop over StringTransport: no exception
escapes (internal_error is never reached), no hang (no command left
waiting), bounded memory (input buffer and pending command bounded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.imap.support import Client, add_user, deliver, make_context, message

_WORDS = [
    "FETCH",
    "UID",
    "STORE",
    "SEARCH",
    "SELECT",
    "EXAMINE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "COPY",
    "MOVE",
    "EXPUNGE",
    "CLOSE",
    "UNSELECT",
    "IDLE",
    "DONE",
    "NOOP",
    "CHECK",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "NAMESPACE",
    "ID",
    "ENABLE",
    "CAPABILITY",
    "AUTHENTICATE",
    "PLAIN",
    "LOGIN",
    "INBOX",
    "Trash",
    "1",
    "2",
    "*",
    "1:*",
    "3:1",
    "4294967295",
    "0",
    "FLAGS",
    "+FLAGS",
    "-FLAGS.SILENT",
    "(\\Seen)",
    "(\\Deleted",
    "\\Flagged)",
    "BODY[]",
    "BODY.PEEK[HEADER.FIELDS (Subject)]<0.5>",
    "BINARY[1]",
    "BODY[1.MIME]",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "ALL",
    "FULL",
    "(",
    ")",
    '""',
    '"a\\"b"',
    "{3}",
    "{2+}",
    "~{1}",
    "NIL",
    "CHARSET",
    "UTF-8",
    "OR",
    "NOT",
    "TEXT",
    "HEADER",
    "SUBJECT",
    "SINCE",
    "1-Jan-2020",
    "LARGER",
    "RETURN",
    "(SPECIAL-USE)",
    "%",
    "x*y",
    "MESSAGES",
    "UIDNEXT",
    "(MESSAGES",
    "UNSEEN)",
    "\r\n",
    "=",
    "*\r\n",
]


def _line() -> Any:
    tag = st.sampled_from(["a", "b1", "*", "+", "x.y", ""])
    words = st.lists(st.sampled_from(_WORDS), min_size=0, max_size=8)
    return st.builds(lambda t, w: (t + " " + " ".join(w)).encode() + b"\r\n", tag, words)


_chunks = st.lists(st.one_of(_line(), st.binary(max_size=40)), min_size=1, max_size=12)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.ctx = make_context(tmp)
        add_user(self.ctx)
        for i in range(3):
            deliver(self.ctx, message(i))

    def client(self, login: bool) -> Client:
        c = Client(self.ctx)
        errors: list[str] = []
        c.proto.internal_error = lambda: errors.append("internal")  # type: ignore[method-assign]
        c.errors = errors  # type: ignore[attr-defined]
        if login:
            c.login()
            c.ok("SELECT INBOX")
        return c


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("imapfuzz"))


def _check(c: Client, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if c.closed:
            break
        out = c.raw(chunk)
        assert b"SERVERBUG" not in out, (chunks, out)
        assert not c.errors, chunks  # type: ignore[attr-defined]
        assert not c.proto._busy, chunks  # a command waits forever: a hang
        assert len(c.proto._buffer) <= c.proto.max_buffer + 64 * 1024
        assert c.proto._cmd_size <= 60 * 1024 * 1024


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_chunks)
def test_fuzz_authenticated_session(env: Env, chunks: list[bytes]) -> None:
    c = env.client(login=True)
    _check(c, chunks)
    c.proto.connectionLost()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(_chunks)
def test_fuzz_unauthenticated_session(env: Env, chunks: list[bytes]) -> None:
    c = env.client(login=False)
    _check(c, chunks)
    c.proto.connectionLost()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=1, max_size=3000))
def test_fuzz_random_bytes(env: Env, data: bytes) -> None:
    c = env.client(login=True)
    _check(c, [data, b"\r\n"])
    c.proto.connectionLost()
