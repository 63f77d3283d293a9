"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and the SPECIAL-USE
selection option (RFC 6154 §5.2), after the RFCs' examples.

The RFC 5258 §5 examples run twice: against :func:`listext.select_entries`
with the examples' exact hierarchy and subscriptions (including names that
no longer exist), and over a session on the real Maildir store.  Attributes
are compared as sets; ``\\Marked``/``\\NoInferiors`` of the examples' inbox
are not something this server sends, and \\HasChildren/\\HasNoChildren are
always sent (RFC 5258 §4 allows it), so they are compared only where the
example asks for CHILDREN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from mailsuite.imap import listext
from mailsuite.imap.parser import ParseError, tokenize
from mailsuite.imap.patterns import wildcard_match
from mailsuite.interfaces import FolderInfo
from tests.imap.support import Client, add_user, deliver, make_context, message

CHILD_ATTRS = {"\\HasChildren", "\\HasNoChildren"}
Expected = Sequence[tuple[str, set[str], tuple[str, ...]]]


def folders(names: list[str], subscribed: frozenset[str] = frozenset()) -> list[FolderInfo]:
    return [FolderInfo(n, None, False, n in subscribed) for n in names]


def run(command: str, boxes: list[FolderInfo], subscribed: set[str]) -> list[listext.Entry]:
    args = tokenize([command.encode()])[1:]
    return listext.select_entries(listext.parse(args), boxes, subscribed)


def check(entries: list[listext.Entry], expected: Expected, children: bool = False) -> None:
    got = [
        (e.name, set(e.attrs) - (set() if children else CHILD_ATTRS), e.childinfo) for e in entries
    ]
    assert sorted(got) == sorted(expected)


FRUIT = ["INBOX", "Fruit", "Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable"]
FRUIT += ["Vegetable/Broccoli", "Vegetable/Corn"]
FRUIT_SUBS = {"INBOX", "Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"}


def test_example_1_and_2_subscribed() -> None:
    boxes = folders(FRUIT)
    check(run('LIST "" "*"', boxes, FRUIT_SUBS), [(n, set(), ()) for n in FRUIT])
    check(
        run('LIST (SUBSCRIBED) "" "*"', boxes, FRUIT_SUBS),
        [
            ("INBOX", {"\\Subscribed"}, ()),
            ("Fruit/Banana", {"\\Subscribed"}, ()),
            ("Fruit/Peach", {"\\Subscribed", "\\NonExistent"}, ()),
            ("Vegetable", {"\\Subscribed"}, ()),
            ("Vegetable/Broccoli", {"\\Subscribed"}, ()),
        ],
    )


def test_example_3_to_6_children_remote_return_subscribed() -> None:
    boxes = folders(FRUIT)
    expected = [
        ("INBOX", {"\\HasNoChildren"}, ()),
        ("Fruit", {"\\HasChildren"}, ()),
        ("Tofu", {"\\HasNoChildren"}, ()),
        ("Vegetable", {"\\HasChildren"}, ()),
    ]
    check(run('LIST () "" "%" RETURN (CHILDREN)', boxes, FRUIT_SUBS), expected, children=True)
    check(run('LIST (REMOTE) "" "%" RETURN (CHILDREN)', boxes, FRUIT_SUBS), expected, True)
    # example 5: (REMOTE SUBSCRIBED) is (SUBSCRIBED) here: no remote mailboxes
    a = run('LIST (REMOTE SUBSCRIBED) "" "*"', boxes, FRUIT_SUBS)
    b = run('LIST (SUBSCRIBED) "" "*"', boxes, FRUIT_SUBS)
    assert [(e.name, e.attrs) for e in a] == [(e.name, e.attrs) for e in b]
    # example 6: no \NonExistent Fruit/Peach, \Subscribed where it applies
    check(
        run('LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)', boxes, FRUIT_SUBS),
        [(n, {"\\Subscribed"} if n in FRUIT_SUBS else set(), ()) for n in FRUIT],
    )


def test_example_7_multiple_patterns() -> None:
    boxes = folders(["INBOX", "Drafts", "Sent", "Sent/March2004", "Sent/December2003"])
    boxes += folders(["Sent/August2004", "Other", "Other/Drafts"])
    check(
        run('LIST "" ("INBOX" "Drafts" "Sent/%")', boxes, set()),
        [
            ("INBOX", set(), ()),
            ("Drafts", set(), ()),
            ("Sent/March2004", set(), ()),
            ("Sent/December2003", set(), ()),
            ("Sent/August2004", set(), ()),
        ],
    )
    # a name matching several patterns is listed once; "" is ignored (§3)
    entries = run('LIST "" ("INBOX" "inbox" "*" "")', boxes, set())
    assert [e.name for e in entries].count("INBOX") == 1 and len(entries) == len(boxes)


FOO = ["INBOX", "Foo", "Foo/Bar", "Foo/Baz", "Moo"]


def test_example_8_recursivematch_and_childinfo() -> None:
    boxes = folders(FOO)
    check(
        run('LIST "" "%" RETURN (CHILDREN)', boxes, set()),
        [
            ("INBOX", {"\\HasNoChildren"}, ()),
            ("Foo", {"\\HasChildren"}, ()),
            ("Moo", {"\\HasNoChildren"}, ()),
        ],
        children=True,
    )
    subs = {"Foo/Baz"}
    check(run('LIST (SUBSCRIBED) "" "*"', boxes, subs), [("Foo/Baz", {"\\Subscribed"}, ())])
    check(run('LIST (SUBSCRIBED) "" "%"', boxes, subs), [])
    check(
        run('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', boxes, subs),
        [("Foo", set(), ("SUBSCRIBED",))],
    )
    # A1: Foo subscribed too
    check(
        run('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', boxes, {"Foo", "Foo/Baz"}),
        [("Foo", {"\\Subscribed"}, ("SUBSCRIBED",))],
    )
    # A2: Foo does not exist
    check(
        run(
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
            folders(["INBOX", "Foo/Bar", "Foo/Baz"]),
            subs,
        ),
        [("Foo", {"\\NonExistent"}, ("SUBSCRIBED",))],
    )
    # B: nothing subscribed
    check(run('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"', boxes, set()), [])
    # C: Foo and Moo subscribed
    check(
        run('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)', boxes, {"Foo", "Moo"}),
        [
            ("Foo", {"\\HasChildren", "\\Subscribed"}, ()),
            ("Moo", {"\\HasNoChildren", "\\Subscribed"}, ()),
        ],
        children=True,
    )


def test_example_9_childinfo_whatever_the_pattern() -> None:
    boxes = folders(["INBOX", "foo2", "foo2/bar1", "foo2/bar2", "baz2", "baz2/bar2"])
    boxes += folders(["baz2/bar22", "baz2/bar222", "eps2", "eps2/mamba", "qux2/bar2"])
    subs = {"foo2/bar1", "foo2/bar2", "baz2/bar2", "baz2/bar22", "baz2/bar222", "eps2"}
    subs |= {"eps2/mamba", "qux2/bar2"}
    check(
        run('LIST (SUBSCRIBED) "" "*"', boxes, subs),
        [(n, {"\\Subscribed"}, ()) for n in subs],
    )
    s = {"\\Subscribed"}
    check(
        run('LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"', boxes, subs),
        [
            ("foo2", set(), ("SUBSCRIBED",)),
            ("foo2/bar2", s, ()),
            ("baz2/bar2", s, ()),
            ("baz2/bar22", s, ()),
            ("baz2/bar222", s, ()),
            ("eps2", s, ("SUBSCRIBED",)),
            ("qux2/bar2", s, ()),
        ],
    )


def test_example_10_childinfo_without_children() -> None:
    boxes = folders(["INBOX", "foo"])
    subs = {"foo/bar"}  # subscribed, does not exist
    check(run('LIST "" ("foo" "foo/*")', boxes, subs), [("foo", set(), ())])
    check(
        run('LIST (SUBSCRIBED) "" "foo/*"', boxes, subs),
        [("foo/bar", {"\\Subscribed", "\\NonExistent"}, ())],
    )
    check(
        run('LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)', boxes, subs),
        [("foo", {"\\HasNoChildren"}, ("SUBSCRIBED",))],
        children=True,
    )


def test_example_11_missing_hierarchy_elements() -> None:
    boxes = folders(["INBOX", "music/rock"])
    check(
        run('LIST () "" %', boxes, set()),
        [("INBOX", {"\\HasNoChildren"}, ()), ("music", {"\\NonExistent", "\\HasChildren"}, ())],
        children=True,
    )
    check(
        run('LIST "" (% music/rock)', boxes, set()),
        [
            ("INBOX", set(), ()),
            ("music", {"\\NonExistent"}, ()),
            ("music/rock", set(), ()),
        ],
    )
    # the basic LIST keeps RFC 3501's \Noselect for such a parent
    entries = run('LIST "" %', boxes, set())
    assert entries[1].name == "music" and "\\Noselect" in entries[1].attrs


def test_special_use_selection_recursivematch() -> None:
    boxes = [
        FolderInfo("INBOX"),
        FolderInfo("Archive", "\\Archive", True),
        FolderInfo("Archive/2024", None),
        FolderInfo("Old", None, True),
        FolderInfo("Old/Trash", "\\Trash"),
    ]
    check(
        run('LIST (SPECIAL-USE) "" "*"', boxes, set()),
        [("Archive", {"\\Archive"}, ()), ("Old/Trash", {"\\Trash"}, ())],
    )
    check(
        run('LIST (SPECIAL-USE RECURSIVEMATCH) "" "%"', boxes, set()),
        [("Archive", {"\\Archive"}, ()), ("Old", set(), ("SPECIAL-USE",))],
    )
    check(
        run('LIST (SPECIAL-USE SUBSCRIBED) "" "*"', boxes, {"Old/Trash", "INBOX"}),
        [("Old/Trash", {"\\Trash", "\\Subscribed"}, ())],
    )


@pytest.mark.parametrize(
    "command",
    [
        'LIST (RECURSIVEMATCH) "" "*"',
        'LIST (REMOTE RECURSIVEMATCH) "" "*"',
        'LIST (BOGUS) "" "*"',
        'LIST "" "*" RETURN (BOGUS)',
        'LIST "" "*" RETURN (STATUS)',
        'LIST "" "*" RETURN (STATUS (MESSAGES) STATUS (UNSEEN))',
        'LIST "" "*" RETURN (STATUS (NOPE))',
        'LIST "" "*" RETURN CHILDREN',
        'LIST ("SUBSCRIBED") "" "*"',
        'LIST "" ()',
        'LIST ""',
    ],
)
def test_bad_options(command: str) -> None:
    with pytest.raises(ParseError):
        listext.parse(tokenize([command.encode()])[1:])


def test_parse_forms() -> None:
    req = listext.parse(tokenize([b'LIST (subscribed subscribed) "" "*"'])[1:])
    assert req.selection == {"SUBSCRIBED"} and "SUBSCRIBED" in req.returns and req.extended
    req = listext.parse(tokenize([b'LIST "" "*" RETURN (STATUS (messages SIZE))'])[1:])
    assert req.status == ("MESSAGES", "SIZE") and req.extended
    assert not listext.parse(tokenize([b'LIST "" ""'])[1:]).extended


def test_wildcards_are_linear() -> None:
    assert wildcard_match("a%b*", "axb/c/d") and not wildcard_match("a%b", "a/b")
    assert not wildcard_match("*a" * 200 + "b", "a" * 2000)  # fast: no backtracking


# -- over a session on the real store ---------------------------------------------


def client(tmp_path: Path) -> Client:
    ctx = make_context(tmp_path)
    add_user(ctx)
    c = Client(ctx)
    c.login()
    return c


def list_lines(out: bytes) -> dict[str, tuple[set[str], bytes]]:
    found = {}
    for m in re.finditer(rb'\* LIST \(([^)]*)\) "/" "([^"]*)"([^\r]*)\r\n', out):
        found[m.group(2).decode()] = ({a.decode() for a in m.group(1).split()}, m.group(3))
    return found


def test_capabilities(tmp_path: Path) -> None:
    caps = client(tmp_path).ok("CAPABILITY").split(b"\r\n")[0].split()
    assert b"LIST-EXTENDED" in caps and b"LIST-STATUS" in caps


def test_session_recursivematch_and_subscribed(tmp_path: Path) -> None:
    c = client(tmp_path)
    for name in ("Foo/Bar", "Foo/Baz", "Moo"):
        c.ok(f"CREATE {name}")
    c.ok("UNSUBSCRIBE INBOX")
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        c.ok(f"UNSUBSCRIBE {name}")
    c.ok("SUBSCRIBE Foo/Baz")
    out = c.ok('LIST (SUBSCRIBED) "" "*"')
    assert list_lines(out) == {"Foo/Baz": ({"\\Subscribed", "\\HasNoChildren"}, b"")}
    out = c.raw(b'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n')
    assert out == (
        b'* LIST (\\HasChildren) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b"C04 OK LIST completed\r\n"
    )
    out = c.ok('LIST "" "*" RETURN (SUBSCRIBED CHILDREN)')
    lines = list_lines(out)
    assert lines["Foo/Baz"][0] == {"\\Subscribed", "\\HasNoChildren"}
    assert lines["Foo"][0] == {"\\HasChildren"} and lines["Sent"][0] == {
        "\\HasNoChildren",
        "\\Sent",
    }


def test_rfc6154_examples(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE ToDo")
    out = c.ok('LIST "" "%" RETURN (SPECIAL-USE)')
    lines = list_lines(out)
    assert lines["Sent"][0] == {"\\Sent", "\\HasNoChildren"} and lines["ToDo"][0] == {
        "\\HasNoChildren"
    }
    out = c.ok('LIST (SPECIAL-USE) "" "*"')
    assert set(list_lines(out)) == {"Sent", "Drafts", "Trash", "Junk", "Archive"}


def test_rfc5819_example_list_status(tmp_path: Path) -> None:
    c = client(tmp_path)
    for i in range(3):
        deliver(c.ctx, message(i), flags=("\\Seen",) if i == 0 else ())
    c.ok("CREATE foo")
    deliver(c.ctx, message(9), folder="foo")
    c.ok("CREATE bar/baz")
    out = c.raw(b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n')
    lines = out.split(b"\r\n")
    i = lines.index(b'* LIST (\\HasNoChildren) "/" "INBOX"')
    assert lines[i + 1] == b'* STATUS "INBOX" (MESSAGES 3 UNSEEN 2)'
    i = lines.index(b'* LIST (\\HasNoChildren) "/" "foo"')
    assert lines[i + 1] == b'* STATUS "foo" (MESSAGES 1 UNSEEN 1)'
    i = lines.index(b'* LIST (\\HasChildren) "/" "bar"')
    assert lines[i + 1] == b'* STATUS "bar" (MESSAGES 0 UNSEEN 0)'
    assert out.endswith(b"A01 OK LIST completed\r\n")
    assert out.count(b"* STATUS") == out.count(b"* LIST")


def test_rfc5819_example_no_status_for_childinfo_parent(tmp_path: Path) -> None:
    c = client(tmp_path)
    c.ok("CREATE foo/sub")
    c.ok("SUBSCRIBE foo/sub")
    out = c.raw(b'A02 LIST (SUBSCRIBED RECURSIVEMATCH)"" % RETURN (STATUS (MESSAGES))\r\n')
    lines = list_lines(out)
    assert lines["foo"] == ({"\\HasChildren"}, b' ("CHILDINFO" ("SUBSCRIBED"))')
    assert b'* STATUS "foo"' not in out
    assert (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n* STATUS "INBOX" (MESSAGES 0)'
        in out
    )


def test_list_status_size_and_appendlimit(tmp_path: Path) -> None:
    # RFC 7889 §3.2 / RFC 8438 §3: the items work through LIST-STATUS too
    c = client(tmp_path)
    deliver(c.ctx, message(1))
    out = c.ok('LIST "" INBOX RETURN (STATUS (SIZE APPENDLIMIT))')
    size = len(message(1))
    limit = c.ctx.config.imap.max_literal_size
    assert b'* STATUS "INBOX" (SIZE %d APPENDLIMIT %d)' % (size, limit) in out


def test_bad_list_in_session(tmp_path: Path) -> None:
    c = client(tmp_path)
    assert c.tagged(c.cmd('LIST (RECURSIVEMATCH) "" "*"')).startswith(b"t2 BAD")
    assert c.tagged(c.cmd('LIST "" "*" RETURN (STATUS (BOGUS))')).startswith(b"t3 BAD")
    # the basic form keeps the "" special case; an extended one does not
    assert b'* LIST (\\Noselect) "/" ""' in c.ok('LIST "" ""')
    out = c.ok('LIST () "" ""')
    assert b"* LIST" not in out
