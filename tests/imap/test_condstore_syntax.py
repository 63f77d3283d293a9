"""RFC 7162 syntax and UID-set arithmetic (mailsuite.imap.condstore): the
parsers accept the RFC's forms and reject everything else with ParseError
only; range operations agree with plain set arithmetic (hypothesis)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsuite.imap import condstore
from mailsuite.imap.parser import ParseError, Token, tokenize


def session(*enabled: str) -> Any:
    return SimpleNamespace(enabled=set(enabled), view=None)


def tokens(text: str) -> Token:
    (token,) = tokenize([text.encode()])
    return token


def test_select_params() -> None:
    s = session("CONDSTORE", "QRESYNC")
    p = condstore.parse_select_params(s, tokens("(CONDSTORE)"))
    assert p.condstore and p.qresync is None
    p = condstore.parse_select_params(
        s, tokens("(QRESYNC (67890007 90060115194045000 41:211,214:541))")
    )
    assert p.qresync is not None and p.qresync.uidvalidity == 67890007
    assert p.qresync.modseq == 90060115194045000 and p.qresync.seq_match is None
    assert p.qresync.known_uids is not None
    assert p.qresync.known_uids.resolve(1000) == [(41, 211), (214, 541)]
    p = condstore.parse_select_params(
        s,
        tokens(
            "(QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
            "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"
        ),
    )
    assert p.qresync is not None and p.qresync.seq_match is not None
    seqs, uids = p.qresync.seq_match
    assert list(condstore.set_numbers(seqs))[:4] == [5000, 7500, 9000, 9990]
    assert list(condstore.set_numbers(uids))[-1] == 29997
    p = condstore.parse_select_params(s, tokens("(QRESYNC (1 2 (1:2 3,5)))"))
    assert p.qresync is not None and p.qresync.known_uids is None
    with pytest.raises(ParseError):
        condstore.parse_select_params(session("CONDSTORE"), tokens("(QRESYNC (1 2))"))


def test_fetch_and_store_modifiers() -> None:
    s = session("CONDSTORE", "QRESYNC")
    m = condstore.parse_fetch_modifiers(s, tokens("(CHANGEDSINCE 12345 VANISHED)"), uid=True)
    assert m == condstore.FetchModifiers(12345, True)
    m = condstore.parse_fetch_modifiers(s, tokens("(changedsince 0)"), uid=False)
    assert m == condstore.FetchModifiers(0, False)
    assert condstore.parse_store_modifiers(tokens("(UNCHANGEDSINCE 0)")) == 0
    top = str(2**63 - 1)
    assert condstore.parse_store_modifiers(tokens(f"(unchangedsince {top})")) == 2**63 - 1
    reordered = condstore.parse_fetch_modifiers(s, tokens("(VANISHED CHANGEDSINCE 1)"), uid=True)
    assert reordered == condstore.FetchModifiers(1, True)  # order does not matter
    for bad in ("(VANISHED)", "(CHANGEDSINCE 1 VANISHED VANISHED)", '("CHANGEDSINCE" 1)'):
        with pytest.raises(ParseError):
            condstore.parse_fetch_modifiers(s, tokens(bad), uid=True)


_WORDS = "CONDSTORE QRESYNC CHANGEDSINCE VANISHED UNCHANGEDSINCE 0 1 5 * 1:3 2,4:5 x NIL 1:*"
_atoms = st.sampled_from([*_WORDS.split(), str(2**63 - 1), str(2**63)])
_tree: Any = st.recursive(
    st.one_of(_atoms, st.binary(max_size=5)),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_tree, st.booleans())
def test_parsers_raise_only_parse_error(token: Any, uid: bool) -> None:
    s = session("CONDSTORE", "QRESYNC")
    for parse in (
        lambda: condstore.parse_select_params(s, token),
        lambda: condstore.parse_fetch_modifiers(s, token, uid),
        lambda: condstore.parse_store_modifiers(token),
    ):
        try:
            parse()
        except ParseError:
            pass


_ranges = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=6,
)


def _norm(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return condstore.to_ranges(n for a, b in ranges for n in range(a, b + 1))


@settings(max_examples=300, deadline=None)
@given(_ranges, st.lists(st.integers(1, 80), max_size=30), st.integers(0, 70), st.integers(0, 80))
def test_range_arithmetic_matches_sets(
    raw: list[tuple[int, int]], present: list[int], low: int, high: int
) -> None:
    ranges = _norm(raw)
    numbers = {n for a, b in ranges for n in range(a, b + 1)}
    have = sorted(set(present))
    assert condstore.subtract(ranges, have) == condstore.to_ranges(numbers - set(have))
    clipped = condstore.clip(ranges, low, high)
    assert clipped == condstore.to_ranges(n for n in numbers if low <= n <= high)
    for n in range(0, 82):
        assert condstore.contains(ranges, n) == (n in numbers)
    text = condstore.ranges_text(ranges)
    assert condstore.number_set(numbers) == text
    if text:
        assert {int(x) for part in text.split(",") for x in part.split(":")} <= numbers
