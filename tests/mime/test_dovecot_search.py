"""Our SEARCH results against Dovecot 2.3.19's for the 49 test messages.

The folder was searched right after SELECT with no flags set.  Dovecot
answered NEW with nothing although SELECT reported 49 RECENT, so the
messages are matched here without ``\\Recent`` (see the report).
"""

from __future__ import annotations

import datetime
import functools

import pytest

from mailsuite.imap.searchmatch import MessageContext, matches, parse_search_program
from mailsuite.mime.structure import Part, parse_message
from tests.mime.mime_testdata import answers, message, searches, tokens, uids

_WHEN = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


@functools.cache
def _contexts() -> list[MessageContext]:
    out = []
    for uid in uids():
        raw = message(uid)
        part = Part.from_data(parse_message(raw).to_data())
        out.append(
            MessageContext(
                uid=uid,
                seq=uid,
                flags=(),
                size=len(raw),
                internaldate=_WHEN,
                max_seq=49,
                max_uid=49,
                load_raw=lambda raw=raw: raw,
                load_part=lambda part=part: part,
            )
        )
    return out


@pytest.mark.parametrize("query", searches())
def test_search_matches_dovecot(query: str) -> None:
    ans = answers()["answers"]["UID SEARCH CHARSET UTF-8 " + query]
    expected = [int(x) for x in ans["untagged"].split("\r\n")[0].split()[2:]]
    _charset, tree = parse_search_program(tokens("CHARSET UTF-8 " + query))
    got = [ctx.uid for ctx in _contexts() if matches(tree, ctx)]
    assert got == expected
