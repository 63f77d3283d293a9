"""Real POP3 clients against the real server: Debian's curl and fetchmail.

Skipped when the tool is not installed (CI installs ``curl`` and ``fetchmail``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ServerProcess

pytest.importorskip("mailsuite.storage.store")
pytestmark = pytest.mark.slow

PASSWORD = "client-test pw"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("pop3clients"), roles=("pop3", "pop3s"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def setup_user(server: ServerProcess, address: str, messages: list[bytes]) -> None:
    from mailsuite.storage.store import MaildirStore

    server.add_user(address, PASSWORD)
    account = MaildirStore(server.maildir).account(address)
    account.ensure_created()
    box = account.open("INBOX")
    for raw in messages:
        box.append(io.BytesIO(raw))


def remaining(server: ServerProcess, address: str) -> int:
    from mailsuite.storage.store import MaildirStore

    box = MaildirStore(server.maildir).account(address).open("INBOX")
    box.sync()
    return len(box.messages())


MESSAGES = [
    b"From: a@example.test\r\nSubject: one\r\n\r\nfirst\r\n.hidden dot\r\n",
    b"From: a@example.test\r\nSubject: two\r\n\r\n" + b"line\r\n" * 2000 + b".\r\n..x\r\n",
]


def test_curl_list_and_retr(server: ServerProcess) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    user = "curl@example.test"
    setup_user(server, user, MESSAGES)
    base = f"pop3s://127.0.0.1:{server.ports['pop3s']}/"
    common = ["curl", "-s", "-S", "-k", "--max-time", "60", "-u", f"{user}:{PASSWORD}"]
    listing = subprocess.run([*common, base], capture_output=True, check=True, timeout=90)
    assert listing.stdout.split(b"\r\n")[:2] == [
        b"1 %d" % len(MESSAGES[0]),
        b"2 %d" % len(MESSAGES[1]),
    ]
    for n, raw in enumerate(MESSAGES, 1):
        got = subprocess.run([*common, f"{base}{n}"], capture_output=True, check=True, timeout=90)
        assert got.stdout == raw  # curl removes the dot-stuffing and the terminator
    # STLS on the plain port (curl --ssl-reqd upgrades with STLS)
    plain = f"pop3://127.0.0.1:{server.ports['pop3']}/1"
    got = subprocess.run(
        [*common, "--ssl-reqd", plain], capture_output=True, check=True, timeout=90
    )
    assert got.stdout == MESSAGES[0]
    assert remaining(server, user) == 2  # curl RETR does not delete


def test_fetchmail_downloads_and_deletes(server: ServerProcess, tmp_path: Path) -> None:
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail is not installed")
    user = "fetch@example.test"
    setup_user(server, user, MESSAGES)
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    mda = f"/bin/sh -c 'cat > $(mktemp {out}/msg.XXXXXX)'"
    rc.write_text(
        f"poll 127.0.0.1 service {server.ports['pop3s']} protocol pop3 timeout 60\n"
        f'  user "{user}" password "{PASSWORD}" ssl no sslcertck\n'
        f'  mda "{mda}" fetchall no keep\n'
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    result = subprocess.run(
        ["fetchmail", "-f", str(rc), "--idfile", str(tmp_path / "ids"), "--nosyslog", "-v"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(out.iterdir())
    assert len(files) == 2
    bodies = sorted(f.read_bytes() for f in files)
    # fetchmail hands the MDA LF line ends and prepends a Received: header
    expected = sorted(m.replace(b"\r\n", b"\n") for m in MESSAGES)
    for got, raw in zip(sorted(bodies, key=len), sorted(expected, key=len), strict=True):
        assert got.endswith(raw.split(b"\n", 1)[1])
    assert remaining(server, user) == 0  # DELE + QUIT applied
