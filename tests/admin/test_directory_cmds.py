"""``mailsuite-admin`` domain, user and alias commands through ``main(argv)``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailsuite.admin import exits
from mailsuite.admin.cli import main
from mailsuite.users.passwords import PasswordHasher

from .conftest import Admin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def seeded(admin: Admin) -> Admin:
    admin.ok("domain", "add", "example.test")
    admin.ok("user", "add", "alice@example.test", "--password-stdin", stdin="alice-pw\n")
    return admin


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["domain"],
        ["domain", "add"],
        ["domain", "list"],
        ["user"],
        ["user", "add"],
        ["user", "del"],
        ["user", "passwd"],
        ["user", "list"],
        ["user", "show"],
        ["user", "enable"],
        ["user", "disable"],
        ["user", "quota"],
        ["alias"],
        ["alias", "add"],
        ["alias", "del"],
        ["alias", "list"],
        ["deliver"],
        ["import-dovecot-passwd"],
    ],
)
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == exits.OK
    assert "usage: mailsuite-admin" in capsys.readouterr().out


def test_usage_errors(admin: Admin) -> None:
    assert admin("user").code == exits.USAGE
    assert admin("user", "add", "a@b.test", "--password", "x").code == exits.USAGE
    assert admin("frobnicate").code == exits.USAGE


def test_domains(admin: Admin) -> None:
    assert admin.ok("domain", "add", "Bücher.Example") == "domain xn--bcher-kva.example added\n"
    admin.ok("domain", "add", "b.test")
    r = admin("domain", "add", "b.test")
    assert (r.code, r.err) == (exits.CANTCREAT, "mailsuite-admin: domain b.test already exists\n")
    r = admin("domain", "add", "not_a domain")
    assert r.code == exits.DATAERR and r.err.count("\n") == 1
    lines = admin.ok("domain", "list").splitlines()
    assert lines[0].split() == ["DOMAIN", "USERS", "ALIASES", "CREATED"]
    assert [ln.split()[0] for ln in lines[1:]] == ["b.test", "xn--bcher-kva.example"]
    col = lines[0].index("USERS")  # columns are aligned under their headers
    assert all(ln[col - 2 : col] == "  " and ln[col] != " " for ln in lines[1:])
    data = json.loads(admin.ok("domain", "list", "--json"))
    assert [d["domain"] for d in data] == ["b.test", "xn--bcher-kva.example"]
    admin.ok("domain", "del", "B.TEST")
    assert admin("domain", "del", "b.test").code == exits.NOUSER


def test_domain_with_users_is_kept(seeded: Admin) -> None:
    r = seeded("domain", "del", "example.test")
    assert r.code == exits.CANTCREAT and "1 user(s)" in r.err


def test_user_add_and_login_hash(seeded: Admin) -> None:
    d = seeded.directory()
    stored = d.get_password_hash("alice@example.test")
    assert stored is not None and stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PasswordHasher().verify("alice-pw", stored)


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["user", "add", "bob@unknown.test"], exits.NOUSER, "not a local domain"),
        (["user", "add", "alice@example.test"], exits.CANTCREAT, "already exists"),
        (["user", "add", "bad address@example.test"], exits.DATAERR, "Invalid"),
        (["user", "add", "no-domain"], exits.DATAERR, "Invalid"),
        (["user", "add", "b@example.test", "--quota-bytes", "lots"], exits.USAGE, "invalid size"),
        (["user", "add", "b@example.test", "--quota-messages", "-1"], exits.USAGE, ">= 0"),
        (["user", "del", "nobody@example.test", "--yes"], exits.NOUSER, "does not exist"),
        (["user", "passwd", "nobody@example.test"], exits.NOUSER, "does not exist"),
        (["user", "show", "nobody@example.test"], exits.NOUSER, "does not exist"),
        (["user", "enable", "nobody@example.test"], exits.NOUSER, "does not exist"),
        (["user", "quota", "nobody@example.test"], exits.NOUSER, "does not exist"),
        (["user", "list", "unknown.test"], exits.NOUSER, "not a local domain"),
    ],
)
def test_user_errors(seeded: Admin, argv: list[str], code: int, text: str) -> None:
    r = seeded(*argv, "--password-stdin", stdin="pw\n") if argv[1] == "add" else seeded(*argv)
    assert r.code == code, r
    assert r.err.startswith("mailsuite-admin: ") and text in r.err and r.err.count("\n") == 1


def test_empty_password_from_stdin(seeded: Admin) -> None:
    r = seeded("user", "add", "b@example.test", "--password-stdin", stdin="\n")
    assert r.code == exits.DATAERR and "empty" in r.err
    assert seeded.directory().get_user("b@example.test") is None


def test_password_prompt_twice(seeded: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["first", "second"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    r = seeded("user", "add", "bob@example.test")
    assert (r.code, r.err) == (exits.DATAERR, "mailsuite-admin: the passwords do not match\n")
    assert len(prompts) == 2
    assert seeded.directory().get_user("bob@example.test") is None
    answers = iter(["same", "same"])
    seeded.ok("user", "add", "bob@example.test")
    answers = iter(["new-pw", "new-pw"])
    seeded.ok("user", "passwd", "BOB@example.test")
    stored = seeded.directory().get_password_hash("bob@example.test")
    assert stored is not None and PasswordHasher().verify("new-pw", stored)


def test_passwd_from_stdin(seeded: Admin) -> None:
    seeded.ok("user", "passwd", "alice@example.test", "--password-stdin", stdin="n3w\r\n")
    stored = seeded.directory().get_password_hash("alice@example.test")
    assert stored is not None and PasswordHasher().verify("n3w", stored)


def test_user_list_show_enable_quota(seeded: Admin) -> None:
    seeded.ok(
        "user", "add", "bob@example.test", "--password-stdin", "--quota-bytes", "2G",
        "--quota-messages", "100", "--disabled", stdin="pw\n",
    )  # fmt: skip
    lines = seeded.ok("user", "list").splitlines()
    assert lines[0].split() == ["ADDRESS", "ENABLED", "QUOTA", "MESSAGES", "CREATED"]
    assert lines[1].split()[:4] == ["alice@example.test", "yes", "unlimited", "unlimited"]
    assert lines[2].split()[:4] == ["bob@example.test", "no", "2G", "100"]
    data = json.loads(seeded.ok("user", "list", "example.test", "--json"))
    assert data[1]["quota_bytes"] == 2 * 1024**3 and data[1]["enabled"] is False
    seeded.ok("user", "enable", "bob@example.test")
    assert seeded.directory().get_user("bob@example.test").enabled  # type: ignore[union-attr]
    seeded.ok("user", "disable", "bob@example.test")
    assert not seeded.directory().get_user("bob@example.test").enabled  # type: ignore[union-attr]
    assert seeded.ok("user", "quota", "bob@example.test") == (
        "bob@example.test: 2G, 100 messages\n"
    )
    seeded.ok("user", "quota", "bob@example.test", "--bytes", "500M")
    rec = seeded.directory().get_user("bob@example.test")
    assert rec is not None and (rec.quota_bytes, rec.quota_messages) == (500 * 1024**2, 100)
    seeded.ok("user", "quota", "bob@example.test", "--messages", "0")
    assert seeded("user", "quota", "bob@example.test", "--messages", "-5").code == exits.USAGE
    seeded.ok("alias", "add", "team@example.test", "bob@example.test")
    shown = seeded.ok("user", "show", "bob@example.test")
    assert "password scheme: argon2id" in shown and "team@example.test" in shown
    data = json.loads(seeded.ok("user", "show", "bob@example.test", "--json"))
    assert data["aliases"] == ["team@example.test"] and data["quota_messages"] == 0


def test_user_del_confirmation(seeded: Admin) -> None:
    r = seeded("user", "del", "alice@example.test", stdin="n\n")
    assert r.code == exits.NOPERM and "Delete user" in r.out
    assert seeded.directory().get_user("alice@example.test") is not None
    r = seeded("user", "del", "alice@example.test", stdin="")  # no answer (EOF)
    assert r.code == exits.NOPERM
    seeded.ok("user", "del", "alice@example.test", stdin="yes\n")
    assert seeded.directory().get_user("alice@example.test") is None


def test_user_del_keeps_maildir_unless_purge(seeded: Admin) -> None:
    seeded.ok("user", "add", "bob@example.test", "--password-stdin", stdin="pw\n")
    maildir = seeded.data / "mail" / "example.test" / "alice"
    (maildir / "cur").mkdir(parents=True, exist_ok=True)
    (maildir / "cur" / "1.msg").write_bytes(b"x")
    seeded.ok("user", "del", "alice@example.test", "--yes")
    assert (maildir / "cur" / "1.msg").exists()
    bob = seeded.data / "mail" / "example.test" / "bob"
    (bob / "cur").mkdir(parents=True, exist_ok=True)
    out = seeded.ok("user", "del", "bob@example.test", "--yes", "--purge")
    assert "deleted" in out and not bob.exists()
    assert (seeded.data / "mail" / "example.test").is_dir()


def test_aliases(seeded: Admin) -> None:
    seeded.ok("user", "add", "bob@example.test", "--password-stdin", stdin="pw\n")
    out = seeded.ok("alias", "add", "Team@Example.test", "alice@example.test", "bob@example.test")
    assert out == "alias team@example.test -> alice@example.test, bob@example.test\n"
    seeded.ok("alias", "add", "@example.test", "alice@example.test")
    seeded.ok("alias", "add", "fwd@example.test", "Someone@Remote.Example")
    lines = seeded.ok("alias", "list").splitlines()
    assert lines[0].split() == ["ALIAS", "TARGETS"]
    assert [ln.split()[0] for ln in lines[1:]] == [
        "@example.test",
        "fwd@example.test",
        "team@example.test",
    ]
    data = json.loads(seeded.ok("alias", "list", "example.test", "--json"))
    assert {"alias": "fwd@example.test", "targets": ["Someone@remote.example"]} in data
    seeded.ok("alias", "del", "team@example.test", "bob@example.test")
    assert seeded.directory().resolve("team@example.test").local[0].account == "alice@example.test"
    seeded.ok("alias", "del", "team@example.test")
    r = seeded("alias", "del", "team@example.test")
    assert r.code == exits.NOUSER


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["alias", "add", "x@example.test", "x@example.test"], exits.DATAERR, "alias loop"),
        (["alias", "add", "x@unknown.test", "alice@example.test"], exits.NOUSER, "not a local"),
        (["alias", "add", "alice@example.test", "bob@x.test"], exits.CANTCREAT, "is a user"),
        (["alias", "add", "x@example.test", "ghost@example.test"], exits.NOUSER, "does not exist"),
        (["alias", "add", "x@example.test", "not an address"], exits.DATAERR, "Invalid"),
        (["alias", "add", "bad source", "alice@example.test"], exits.DATAERR, "Invalid"),
        (["alias", "list", "unknown.test"], exits.NOUSER, "not a local"),
    ],
)
def test_alias_errors(seeded: Admin, argv: list[str], code: int, text: str) -> None:
    r = seeded(*argv)
    assert r.code == code, r
    assert text in r.err and r.err.count("\n") == 1


def test_alias_loop_across_commands(seeded: Admin) -> None:
    seeded.ok("alias", "add", "a@example.test", "alice@example.test")
    seeded.ok("alias", "add", "b@example.test", "a@example.test")
    r = seeded("alias", "add", "a@example.test", "b@example.test")
    assert r.code == exits.DATAERR
    assert "a@example.test -> b@example.test -> a@example.test" in r.err


def test_config_errors_and_data_dir_override(admin: Admin, tmp_path: Path) -> None:
    assert main(["-c", str(tmp_path / "missing.toml"), "domain", "list"]) == exits.CONFIG
    other = tmp_path / "other"
    assert main(["--data-dir", str(other), "domain", "add", "x.test"]) == exits.OK
    assert (other / "users.sqlite").exists()


def test_unwritable_data_dir(admin: Admin, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = admin("--data-dir", str(blocker / "sub"), "domain", "list")
    assert r.code == exits.CANTCREAT and "cannot create data directory" in r.err


def test_subprocess(admin: Admin) -> None:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    base = [sys.executable, "-m", "mailsuite.admin.cli", "-c", str(admin.config)]
    run = subprocess.run([*base, "domain", "add", "sub.test"], env=env, capture_output=True)
    assert run.returncode == 0, run.stderr
    server_side = admin.directory()  # stays open, like the running server's
    assert server_side.get_user("u@sub.test") is None
    run = subprocess.run(
        [*base, "user", "add", "u@sub.test", "--password-stdin"],
        input=b"pw\n",
        env=env,
        capture_output=True,
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run([*base, "user", "add", "u@sub.test", "--password-stdin"],
                         input=b"pw\n", env=env, capture_output=True)  # fmt: skip
    assert run.returncode == exits.CANTCREAT
    assert run.stderr == b"mailsuite-admin: user u@sub.test already exists\n"
    run = subprocess.run([*base, "user", "list", "--json"], env=env, capture_output=True)
    assert json.loads(run.stdout)[0]["address"] == "u@sub.test"
    # The other process's changes are seen at once, without reopening.
    assert server_side.get_user("u@sub.test") is not None
    run = subprocess.run([*base, "user", "disable", "u@sub.test"], env=env, capture_output=True)
    assert run.returncode == 0
    assert not server_side.get_user("u@sub.test").enabled  # type: ignore[union-attr]
    server_side.close()
