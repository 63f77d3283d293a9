"""MessageList.flags_range: the whole-listing memo answers like the names."""

from __future__ import annotations

from mailsuite.storage.messages import MessageList


def _flags_of(calls: list[str]):  # type: ignore[no-untyped-def]
    def flags_of(name: str) -> frozenset[str]:
        calls.append(name)
        return frozenset({"\\Seen"}) if name.endswith("S") else frozenset()

    return flags_of


def _listing(n: int, calls: list[str]) -> MessageList:
    names = [f"{i}.M1P1.host:2,{'S' if i % 3 == 0 else ''}" for i in range(n)]
    return MessageList(list(range(1, n + 1)), names, [10] * n, [0.0] * n, _flags_of(calls))


def test_small_ranges_parse_only_their_names() -> None:
    calls: list[str] = []
    listing = _listing(5000, calls)
    assert listing.flags_range(3, 7) == [
        frozenset({"\\Seen"}) if i % 3 == 0 else frozenset() for i in range(3, 7)
    ]
    assert len(calls) == 4


def test_a_big_range_parses_the_listing_once_and_agrees() -> None:
    calls: list[str] = []
    listing = _listing(5000, calls)
    expected = [frozenset({"\\Seen"}) if i % 3 == 0 else frozenset() for i in range(5000)]
    assert listing.flags_range(0, 5000) == expected
    assert listing.flags_range(0, 5000) == expected
    assert listing.flags_range(100, 1200) == expected[100:1200]
    assert listing.flags_range(4990, 5000) == expected[4990:]
    assert len(calls) == 5000
    assert [m.flags for m in listing[10:13]] == expected[10:13]
