"""Random command lines never crash a session, never leak, never lose mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsuite.pop3.server import POP3Factory
from tests.pop3.support import (
    Client,
    TLSRecordingTransport,
    add_user,
    deliver,
    make_context,
    message,
)

pytest.importorskip("mailsuite.storage.store")

USER = "fuzz@example.test"
KEYWORDS = [
    "USER",
    "PASS",
    "AUTH",
    "CAPA",
    "STLS",
    "STAT",
    "LIST",
    "UIDL",
    "RETR",
    "TOP",
    "DELE",
    "RSET",
    "NOOP",
    "APOP",
    "LAST",
    "retr",
    "Top",
    "",
]
ARGS = st.one_of(
    st.just(""),
    st.integers(min_value=-5, max_value=10**25).map(str),
    st.sampled_from(
        [
            "1",
            "2 0",
            "1 -1",
            "3 99999999999",
            "PLAIN",
            "LOGIN",
            "*",
            "=",
            USER,
            "correct horse",
            "1 1 1",
            "0x1",
            " 1",
            "1 ",
            "\t1",
        ]
    ),
    st.text(max_size=40),
)
LINES = st.one_of(
    st.tuples(st.sampled_from(KEYWORDS), ARGS).map(lambda t: f"{t[0]} {t[1]}".encode()),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
)


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[POP3Factory]:
    ctx = make_context(Path(tmp_path_factory.mktemp("fuzz")), allow_plaintext=True)
    add_user(ctx, USER)
    for n in (1, 2, 3):
        deliver(ctx, USER, message(n))
    yield POP3Factory(ctx, "pop3")


def _inbox_size(factory: POP3Factory) -> int:
    box: Any = factory.context.store.account(USER).open("INBOX")
    box.sync()
    return len(box.messages())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.booleans(), st.lists(LINES, max_size=25))
def test_random_sessions(factory: POP3Factory, login: bool, lines: list[bytes]) -> None:
    c = Client(factory, transport=TLSRecordingTransport())
    if login:
        assert c.login(USER).startswith(b"+OK")
    for line in lines:
        if c.closed:
            break
        out = c.send(line)
        assert out.startswith((b"+OK", b"-ERR", b"+ ")), (line, out)
        assert b"Internal" not in out and b"Traceback" not in out
    c.drop()  # never QUIT: every DELE is forgotten
    assert _inbox_size(factory) == 3
