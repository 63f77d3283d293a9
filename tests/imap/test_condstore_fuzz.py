"""Hypothesis fuzzing of CONDSTORE/QRESYNC command sequences on two sessions
of one mailbox: no exception escapes, no command hangs, every command gets
its tagged reply, and HIGHESTMODSEQ told to a session on one mailbox never
goes down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.imap.support import deliver, message
from tests.imap.test_fuzz import Env, _check

_SETS = ["1", "2:3", "*", "1:*", "3,1", "4294967295", "0", "1:4294967295"]
_MODSEQS = ["0", "1", "5", "9223372036854775807", "9223372036854775808", "x", "{HMS}"]
# "{HMS}"/"{UV}" are replaced by the last HIGHESTMODSEQ/UIDVALIDITY seen
_TEMPLATES = [
    "ENABLE {word}",
    "ENABLE QRESYNC CONDSTORE",
    "FETCH {set} (FLAGS MODSEQ)",
    "FETCH {set} (FLAGS) (CHANGEDSINCE {modseq})",
    "UID FETCH {set} (FLAGS) (CHANGEDSINCE {modseq} VANISHED)",
    "UID FETCH {set} (UID) (VANISHED CHANGEDSINCE {modseq})",
    "FETCH {set} (BODY[HEADER]) (CHANGEDSINCE {modseq})",
    "STORE {set} (UNCHANGEDSINCE {modseq}) +FLAGS{silent} ({flag})",
    "UID STORE {set} (UNCHANGEDSINCE {modseq}) -FLAGS{silent} ({flag})",
    "STORE {set} (UNCHANGEDSINCE {modseq}) FLAGS{silent} ({flag})",
    "STORE {set} +FLAGS{silent} ({flag})",
    "STORE {set} +FLAGS.SILENT (\\Deleted)",
    "UID STORE {set} +FLAGS.SILENT (\\Deleted)",
    "SEARCH MODSEQ {modseq}",
    'UID SEARCH MODSEQ "/flags/\\\\seen" {word} {modseq}',
    "SEARCH RETURN (ALL COUNT) MODSEQ {modseq}",
    "STATUS INBOX (HIGHESTMODSEQ MESSAGES)",
    "SELECT INBOX (CONDSTORE)",
    "EXAMINE INBOX (QRESYNC ({uv} {modseq} {set} ({set} {set})))",
    "SELECT INBOX (QRESYNC ({uv} {modseq}))",
    "SELECT INBOX (QRESYNC ({uv} {modseq} {set}))",
    "SELECT INBOX ({word})",
    "EXPUNGE",
    "UID EXPUNGE {set}",
    "NOOP",
    "CLOSE",
    "UNSELECT",
    "SELECT INBOX",
]
_WORDS = ["CONDSTORE", "QRESYNC", "all", "priv", "shared", "X", "NIL", "()"]
_FLAGS = ["\\Seen", "\\Deleted", "\\Flagged", "$Label", "\\Recent"]


def _command() -> Any:
    return st.builds(
        lambda t, s, m, w, f, silent: t.format(
            set=s, modseq=m, word=w, flag=f, silent=silent, uv="{UV}", HMS="{HMS}"
        ),
        st.sampled_from(_TEMPLATES),
        st.sampled_from(_SETS),
        st.sampled_from(_MODSEQS),
        st.sampled_from(_WORDS),
        st.sampled_from(_FLAGS),
        st.sampled_from(["", ".SILENT"]),
    )


_script = st.lists(
    st.tuples(st.sampled_from(["a", "b", "deliver"]), _command()), min_size=1, max_size=14
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("condstorefuzz"))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(_script)
def test_fuzz_condstore_sessions(env: Env, script: list[tuple[str, str]]) -> None:
    for i in range(2):
        deliver(env.ctx, message(i))
    a, b = env.client(login=True), env.client(login=True)
    a.ok("ENABLE QRESYNC")  # b stays a plain client until the script enables
    told: dict[str, list[int]] = {"a": [], "b": []}
    state = {"UV": "1", "HMS": "1"}
    for who, command in script:
        if who == "deliver":
            deliver(env.ctx, message(7))
            continue
        c = a if who == "a" else b
        text = command.replace("{UV}", state["UV"]).replace("{HMS}", state["HMS"])
        if text.startswith(("SELECT", "EXAMINE", "CLOSE", "UNSELECT")):
            told[who] = []  # another mailbox view: a new sequence of values
        c.n += 1
        before = len(told[who])
        out = c.raw(b"t%d " % c.n + text.encode() + b"\r\n")
        _check(c, [])  # no internal error, no hang, bounded buffers
        assert b"SERVERBUG" not in out, (script, text, out)
        assert re.search(rb"(^|\r\n)t%d (OK|NO|BAD) " % c.n, out), (text, out)
        if uv := re.search(rb"\[UIDVALIDITY (\d+)\]", out):
            state["UV"] = uv.group(1).decode()
        for value in re.findall(rb"\[HIGHESTMODSEQ (\d+)\]", out):
            told[who].append(int(value))
            state["HMS"] = value.decode()
        assert told[who][before:] == sorted(told[who][before:]), (text, out)
        assert told[who] == sorted(told[who]), (script, told)
    for c in (a, b):
        c.proto.connectionLost()


def test_fuzz_env_is_shared_with_the_core_fuzz(tmp_path: Path) -> None:
    """The fuzz above reuses the core fuzz harness (one mailbox, 3 messages)."""
    e = Env(tmp_path)
    c = e.client(login=True)
    assert b"HIGHESTMODSEQ" in c.ok("SELECT INBOX (CONDSTORE)")
