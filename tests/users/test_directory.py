"""The SQLite user directory against a real file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from mailsuite.config import UsersConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import LocalTarget, Resolution, UserRecord
from mailsuite.users import schema
from mailsuite.users.directory import SQLiteDirectory

H = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def kind(exc: pytest.ExceptionInfo[MailError]) -> ErrorKind:
    return exc.value.kind


@pytest.fixture
def d(directory: SQLiteDirectory) -> SQLiteDirectory:
    directory.add_domain("Example.TEST")
    directory.add_user("Alice@example.test", H)
    directory.add_user("bob@EXAMPLE.test", H, quota_bytes=1000, quota_messages=5)
    return directory


def local(*addrs: str) -> Resolution:
    return Resolution(local=tuple(LocalTarget(a) for a in addrs))


def test_file_is_wal_and_versioned(d: SQLiteDirectory) -> None:
    conn = sqlite3.connect(d.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema.read_version(conn) == schema.CURRENT_VERSION
    conn.close()


def test_reopen_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite"
    SQLiteDirectory(path, UsersConfig()).add_domain("a.test")
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn, str(path)) == schema.CURRENT_VERSION
    conn.close()
    assert [x.name for x in SQLiteDirectory(path, UsersConfig()).list_domains()] == ["a.test"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite"
    SQLiteDirectory(path, UsersConfig()).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(MailError) as e:
        SQLiteDirectory(path, UsersConfig())
    assert kind(e) is ErrorKind.TEMPORARY and "newer" in e.value.detail


def test_domains(directory: SQLiteDirectory) -> None:
    assert directory.add_domain("Bücher.Example") == "xn--bcher-kva.example"
    assert directory.is_local_domain("BÜCHER.example.")
    assert directory.is_local_domain("XN--BCHER-KVA.EXAMPLE")
    assert not directory.is_local_domain("other.example")
    assert not directory.is_local_domain("not a domain")
    with pytest.raises(MailError) as e:
        directory.add_domain("xn--bcher-kva.example")
    assert kind(e) is ErrorKind.ALREADY_EXISTS
    for bad in [
        "",
        "-a.test",
        "a..test",
        "[127.0.0.1]",
        "a_b.test",
        "x" * 64 + ".test",
        "1.2.3.4",
    ]:
        with pytest.raises(MailError) as e:
            directory.add_domain(bad)
        assert kind(e) is ErrorKind.BAD_ADDRESS, bad
    directory.delete_domain("bücher.example")
    assert directory.list_domains() == []
    with pytest.raises(MailError) as e:
        directory.delete_domain("bücher.example")
    assert kind(e) is ErrorKind.NONEXISTENT


def test_domain_with_users_cannot_be_deleted(d: SQLiteDirectory) -> None:
    with pytest.raises(MailError) as e:
        d.delete_domain("example.test")
    assert kind(e) is ErrorKind.ALREADY_EXISTS and "2 user(s)" in e.value.public_text
    [info] = d.list_domains()
    assert (info.name, info.users, info.aliases) == ("example.test", 2, 0)


def test_users(d: SQLiteDirectory) -> None:
    assert d.get_user("ALICE@Example.Test") == UserRecord("alice@example.test")
    assert d.get_user("bob@example.test") == UserRecord("bob@example.test", True, 1000, 5)
    assert d.get_user("carol@example.test") is None
    assert d.get_user("not an address") is None
    assert d.get_credentials("alice@example.test") == (UserRecord("alice@example.test"), H)
    assert [u.address for u in d.list_users()] == ["alice@example.test", "bob@example.test"]
    assert [u.address for u in d.list_users("EXAMPLE.test")] == [
        "alice@example.test",
        "bob@example.test",
    ]
    d.set_enabled("alice@example.test", False)
    d.set_quota("alice@example.test", 10, 2)
    d.set_password_hash("alice@example.test", "{PLAIN}x")
    assert d.get_credentials("alice@example.test") == (
        UserRecord("alice@example.test", False, 10, 2),
        "{PLAIN}x",
    )
    assert not d.replace_password_hash("alice@example.test", "old", "new")
    assert d.replace_password_hash("alice@example.test", "{PLAIN}x", "new")
    assert d.get_password_hash("alice@example.test") == "new"
    d.delete_user("alice@example.test")
    assert d.get_user("alice@example.test") is None


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda d: d.add_user("alice@example.test", H), ErrorKind.ALREADY_EXISTS),
        (lambda d: d.add_user("x@unknown.test", H), ErrorKind.NONEXISTENT),
        (lambda d: d.add_user("no-at-sign", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user("a b@example.test", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user(".a@example.test", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user("a..b@example.test", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user("x" * 65 + "@example.test", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user("a@", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.add_user("a/b@example.test", H), ErrorKind.BAD_ADDRESS),
        (lambda d: d.delete_user("carol@example.test"), ErrorKind.NONEXISTENT),
        (lambda d: d.set_enabled("carol@example.test", True), ErrorKind.NONEXISTENT),
        (lambda d: d.set_quota("alice@example.test", -1, 0), ErrorKind.BAD_INPUT),
        (lambda d: d.list_users("unknown.test"), ErrorKind.NONEXISTENT),
    ],
)
def test_user_errors(d: SQLiteDirectory, call: object, expected: ErrorKind) -> None:
    with pytest.raises(MailError) as e:
        call(d)  # type: ignore[operator]
    assert kind(e) is expected


def test_unicode_and_quoted_localparts(d: SQLiteDirectory) -> None:
    assert d.add_user("Jörg@example.test", H) == "jörg@example.test"
    assert d.get_user('"JÖRG"@example.test') == UserRecord("jörg@example.test")


def test_case_sensitive_localparts(tmp_path: Path) -> None:
    d = SQLiteDirectory(tmp_path / "u.sqlite", UsersConfig(localpart_case_sensitive=True))
    d.add_domain("A.test")
    assert d.add_user("Bob@A.TEST", H) == "Bob@a.test"
    assert d.get_user("Bob@a.test") is not None
    assert d.get_user("bob@a.test") is None
    with pytest.raises(MailError):
        d.resolve("bob@a.test")


def test_resolve_users_subaddress_and_remote(d: SQLiteDirectory) -> None:
    assert d.resolve("ALICE@example.test") == local("alice@example.test")
    assert d.resolve("alice+news@example.test") == local("alice@example.test")
    assert d.resolve("Remote.User@Other.Example") == Resolution(
        remote=("Remote.User@other.example",)
    )
    with pytest.raises(MailError) as e:
        d.resolve("carol@example.test")
    assert kind(e) is ErrorKind.UNKNOWN_MAILBOX
    with pytest.raises(MailError) as e:
        d.resolve("+tag@example.test")
    assert kind(e) is ErrorKind.UNKNOWN_MAILBOX
    for bad in ["", "nobody", "a b@example.test", "a@[1.2.3.4"]:
        with pytest.raises(MailError) as e:
            d.resolve(bad)
        assert kind(e) is ErrorKind.BAD_ADDRESS, bad


def test_resolve_local_is_resolve_for_local_domains_only(d: SQLiteDirectory) -> None:
    d.add_alias("team@example.test", ["alice@example.test", "far@remote.example"])
    for address in [
        "ALICE@Example.Test.",
        '"alice"@example.test',
        "alice+news@example.test",
        "team@example.test",
        "Bob@EXAMPLE.test",
    ]:
        assert d.resolve_local(address) == d.resolve(address), address
    assert d.resolve_local("someone@remote.example") is None
    assert d.resolve_local("someone@[192.0.2.1]") is None
    assert d.resolve_local("someone@bad..domain") is None
    with pytest.raises(MailError) as e:
        d.resolve_local("carol@example.test")
    assert kind(e) is ErrorKind.UNKNOWN_MAILBOX
    with pytest.raises(MailError) as e:
        d.resolve_local("nobody")
    assert kind(e) is ErrorKind.BAD_ADDRESS
    with pytest.raises(MailError) as e:
        d.resolve_local("a b@example.test")
    assert kind(e) is ErrorKind.BAD_ADDRESS


def test_resolve_local_database_error_is_temporary(tmp_path: Path) -> None:
    d = SQLiteDirectory(tmp_path / "u.sqlite", UsersConfig())
    d.add_domain("a.test")
    d._conn.close()
    with pytest.raises(MailError) as e:
        d.resolve_local("x@a.test")
    assert kind(e) is ErrorKind.TEMPORARY


def test_subaddress_separator_configurable(tmp_path: Path) -> None:
    for sep, works in [("-", True), ("", False)]:
        d = SQLiteDirectory(tmp_path / f"u{sep}.sqlite", UsersConfig(subaddress_separator=sep))
        d.add_domain("a.test")
        d.add_user("bob@a.test", H)
        if works:
            assert d.resolve(f"bob{sep}x@a.test") == local("bob@a.test")
        with pytest.raises(MailError):
            d.resolve("bob+x@a.test")


def test_aliases(d: SQLiteDirectory) -> None:
    info = d.add_alias("Team@example.test", ["alice@example.test", "Bob@Example.Test"])
    assert info.targets == ("alice@example.test", "bob@example.test")
    d.add_alias("postmaster@example.test", ["team@example.test", "Ext.Person@Remote.Example"])
    assert d.resolve("postmaster@example.test") == Resolution(
        local=(LocalTarget("alice@example.test"), LocalTarget("bob@example.test")),
        remote=("Ext.Person@remote.example",),
    )
    assert d.resolve("team+x@example.test") == local("alice@example.test", "bob@example.test")
    assert d.sender_addresses("bob@example.test") == {
        "bob@example.test",
        "team@example.test",
        "postmaster@example.test",
    }
    assert d.sender_addresses("nobody") == set()
    # A catch-all takes what nothing else receives.
    d.add_alias("@example.test", ["bob@example.test"])
    assert d.resolve("anything@example.test") == local("bob@example.test")
    assert d.resolve("alice@example.test") == local("alice@example.test")
    assert "@example.test" not in d.sender_addresses("bob@example.test")
    listed = {a.source: a.targets for a in d.list_aliases("example.test")}
    assert listed["@example.test"] == ("bob@example.test",)
    assert len(d.list_aliases()) == 3
    # Removing one target, then the whole alias.
    assert d.delete_alias("team@example.test", ["alice@example.test"]) == 1
    assert d.resolve("team@example.test") == local("bob@example.test")
    assert d.delete_alias("team@example.test") == 1
    assert {a.source for a in d.list_aliases()} == {"postmaster@example.test", "@example.test"}
    # Deleting a user removes it as an alias target.
    assert d.delete_user("bob@example.test") == 1


def test_deleted_targets_are_skipped(d: SQLiteDirectory) -> None:
    d.add_alias("list@example.test", ["alice@example.test", "bob@example.test"])
    conn = sqlite3.connect(d.path)  # another process removes a user behind our back
    conn.execute("DELETE FROM users WHERE address = 'bob@example.test'")
    conn.commit()
    conn.close()
    assert d.resolve("list@example.test") == local("alice@example.test")
    d.delete_user("alice@example.test")
    with pytest.raises(MailError) as e:
        d.resolve("list@example.test")
    assert kind(e) is ErrorKind.UNKNOWN_MAILBOX


@pytest.mark.parametrize(
    ("source", "targets", "expected"),
    [
        ("alice@example.test", ["bob@example.test"], ErrorKind.ALREADY_EXISTS),
        ("x@unknown.test", ["bob@example.test"], ErrorKind.NONEXISTENT),
        ("x@example.test", [], ErrorKind.BAD_INPUT),
        ("x@example.test", ["nobody@example.test"], ErrorKind.NONEXISTENT),
        ("x@example.test", ["x@example.test"], ErrorKind.ALIAS_LOOP),
        ("x@example.test", ["bad address"], ErrorKind.BAD_ADDRESS),
        ("bad source", ["bob@example.test"], ErrorKind.BAD_ADDRESS),
        ("@example.test", ["nobody@example.test"], ErrorKind.ALIAS_LOOP),
    ],
)
def test_alias_errors(
    d: SQLiteDirectory, source: str, targets: list[str], expected: ErrorKind
) -> None:
    with pytest.raises(MailError) as e:
        d.add_alias(source, targets)
    assert kind(e) is expected
    assert d.list_aliases() == []  # nothing stored


def test_alias_loop_through_several_aliases(d: SQLiteDirectory) -> None:
    d.add_alias("a@example.test", ["alice@example.test"])
    d.add_alias("b@example.test", ["a@example.test"])
    d.add_alias("c@example.test", ["b@example.test"])
    with pytest.raises(MailError) as e:
        d.add_alias("a@example.test", ["c@example.test"])
    assert kind(e) is ErrorKind.ALIAS_LOOP
    assert "a@example.test -> c@example.test -> b@example.test" in e.value.public_text
    assert d.resolve("c@example.test") == local("alice@example.test")
    # A diamond is not a loop.
    d.add_alias("d@example.test", ["a@example.test", "b@example.test"])
    assert d.resolve("d@example.test") == local("alice@example.test")


def test_loop_made_by_another_process_is_caught_at_resolve(d: SQLiteDirectory) -> None:
    d.add_alias("a@example.test", ["alice@example.test"])
    d.add_alias("b@example.test", ["a@example.test"])
    conn = sqlite3.connect(d.path)
    conn.execute(
        "INSERT INTO aliases VALUES ('a@example.test', 'example.test', 'b@example.test', 0)"
    )
    conn.commit()
    conn.close()
    with pytest.raises(MailError) as e:
        d.resolve("b@example.test")
    assert kind(e) is ErrorKind.ALIAS_LOOP
    assert "example.test" not in e.value.public_text  # the path is for the log only


def test_depth_limit(tmp_path: Path) -> None:
    d = SQLiteDirectory(tmp_path / "u.sqlite", UsersConfig(alias_max_depth=3))
    d.add_domain("a.test")
    d.add_user("u@a.test", H)
    d.add_alias("l1@a.test", ["u@a.test"])
    d.add_alias("l2@a.test", ["l1@a.test"])
    with pytest.raises(MailError) as e:
        d.add_alias("l3@a.test", ["l2@a.test"])
    assert kind(e) is ErrorKind.ALIAS_LOOP


def test_user_and_alias_names_do_not_collide(d: SQLiteDirectory) -> None:
    d.add_alias("sales@example.test", ["bob@example.test"])
    with pytest.raises(MailError) as e:
        d.add_user("SALES@example.test", H)
    assert kind(e) is ErrorKind.ALREADY_EXISTS


def test_alias_delete_errors(d: SQLiteDirectory) -> None:
    with pytest.raises(MailError) as e:
        d.delete_alias("none@example.test")
    assert kind(e) is ErrorKind.NONEXISTENT
    d.add_alias("x@example.test", ["bob@example.test"])
    with pytest.raises(MailError) as e:
        d.delete_alias("x@example.test", ["alice@example.test"])
    assert kind(e) is ErrorKind.NONEXISTENT


def test_changes_from_another_connection_are_seen_at_once(d: SQLiteDirectory) -> None:
    other = SQLiteDirectory(d.path, UsersConfig())
    assert other.get_user("carol@example.test") is None
    d.add_user("carol@example.test", H)
    assert other.get_user("carol@example.test") == UserRecord("carol@example.test")
    d.set_enabled("carol@example.test", False)
    assert other.get_user("carol@example.test") == UserRecord("carol@example.test", False)
    other.close()


def test_concurrent_use_from_threads(d: SQLiteDirectory) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                d.add_user(f"t{n}-{i}@example.test", H)
                assert d.resolve(f"t{n}-{i}@example.test") == local(f"t{n}-{i}@example.test")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(d.list_users()) == 82


def test_locked_file_is_a_temporary_error(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite"
    d = SQLiteDirectory(path, UsersConfig())
    d._conn.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(MailError) as e:
            d.add_domain("a.test")
        assert kind(e) is ErrorKind.TEMPORARY
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    d.add_domain("a.test")
