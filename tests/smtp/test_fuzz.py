"""Hypothesis fuzzing of the session: any input, split anywhere, never
crashes the protocol, and every output line is a well-formed reply."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.smtp.conftest import Env

WORDS = [
    b"EHLO x.example\r\n",
    b"HELO x\r\n",
    b"MAIL FROM:<a@remote.example>\r\n",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME\r\n",
    b"RCPT TO:<alice@example.test>\r\n",
    b"RCPT TO:<team@example.test> NOTIFY=NEVER\r\n",
    b"RCPT TO:<nobody@example.test>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 3 LAST\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY a\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN dXNlcg==\r\n",
    b"*\r\n",
    b".\r\n",
    b"\r\n",
    b"Subject: x\r\n",
    b"..dot\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\x00",
    b"x" * 3000,
    b"\xff\xfe\r\n",
]

REPLY = re.compile(rb"^[2-5]\d\d[ -]")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    role=st.sampled_from(["smtp", "submission"]),
    parts=st.lists(st.one_of(st.sampled_from(WORDS), st.binary(max_size=30)), max_size=25),
    cut=st.integers(1, 64),
)
def test_any_input_gets_well_formed_replies(
    env: Env, role: str, parts: list[bytes], cut: int
) -> None:
    env.allow_plaintext()
    c = env.client(role, greet=False)
    data = b"".join(parts)
    for i in range(0, len(data), cut):
        if c.closed:
            break
        c.send(data[i : i + cut])
    c.proto.connectionLost(None)
    for line in c.transport.value().split(b"\r\n"):
        if line:
            assert REPLY.match(line), line
            assert not line.startswith(b"421 4.3.0"), "internal error"
    assert all(d.state != "open" for d in env.agent.begun)
