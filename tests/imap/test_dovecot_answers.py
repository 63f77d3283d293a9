"""Our FETCH and SEARCH answers, through the whole session, against Dovecot's
for the messages in ../shared/testdata (see its README)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.imap.support import Client, add_user, deliver, make_context

testdata = pytest.importorskip("tests.mime.mime_testdata")

_TAG_RE = re.compile(r"^t\d+ (OK|NO|BAD)")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Client:
    if not testdata.available():
        pytest.skip("reference answers not available")
    tmp = tmp_path_factory.mktemp("dovecot")
    ctx = make_context(tmp)
    add_user(ctx)
    for uid in testdata.uids():
        assert deliver(ctx, testdata.message(uid)) == uid
    first = Client(ctx)  # the reference answers come from a later session:
    first.login()  # an earlier one has seen the messages (no \Recent left)
    first.ok("SELECT INBOX")
    first.ok("LOGOUT")
    c = Client(ctx)
    c.login()
    c.ok("SELECT INBOX")
    return c


def _commands(prefix: str) -> list[str]:
    if not testdata.available():
        return []
    return [k for k in testdata.answers()["answers"] if k.startswith(prefix)]


def _run(c: Client, command: str) -> tuple[str, str]:
    out = c.cmd(command.encode("latin-1")).decode("latin-1")
    untagged, _, tagged = out.rpartition(f"t{c.n} ")
    return untagged, tagged.split(" ", 1)[0]


@pytest.mark.parametrize("command", _commands("UID FETCH"))
def test_fetch_matches_dovecot(client: Client, command: str) -> None:
    expected: dict[str, Any] = testdata.answers()["answers"][command]
    untagged, status = _run(client, command)
    if "error" in expected:  # Dovecot dropped the connection; we answer NO
        assert status == "NO" and not client.closed
        return
    assert status == _TAG_RE.match(expected["tagged"]).group(1)  # type: ignore[union-attr]
    assert testdata.hash_literals(untagged) == expected["untagged"]


@pytest.mark.parametrize("command", _commands("UID SEARCH"))
def test_search_matches_dovecot(client: Client, command: str) -> None:
    expected: dict[str, Any] = testdata.answers()["answers"][command]
    untagged, status = _run(client, command)
    assert status == _TAG_RE.match(expected["tagged"]).group(1)  # type: ignore[union-attr]
    # Dovecot may also announce a keyword it created (FLAGS): compare SEARCH only
    ours = [line for line in untagged.split("\r\n") if line.startswith("* SEARCH")]
    theirs = [line for line in expected["untagged"].split("\r\n") if line.startswith("* SEARCH")]
    assert ours == theirs
