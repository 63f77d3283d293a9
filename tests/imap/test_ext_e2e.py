"""End to end: the issue-9 extensions on the real ``twistd mailsuite`` over
implicit TLS -- IMAPClient where it supports them (QUOTA, MULTIAPPEND,
STATUS SIZE/APPENDLIMIT, WITHIN), imaplib for the rest (ESEARCH,
LIST-EXTENDED/LIST-STATUS)."""

from __future__ import annotations

import datetime
import imaplib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import ServerProcess

imapclient = pytest.importorskip("imapclient")
pytestmark = pytest.mark.slow

PASSWORD = "ext e2e secret"
LIMIT = 1_000_000


def msg(n: int) -> bytes:
    return (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: ext %d\r\n"
        b"Date: Tue, 1 Jan 2030 10:00:00 +0000\r\n\r\nBody %d\r\n" % (n, n)
    )


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(
        tmp_path_factory.mktemp("imapext"),
        roles=("imaps",),
        extra_config={"imap": {"max_literal_size": LIMIT}},
    ) as srv:
        yield srv


@pytest.fixture
def user(server: ServerProcess) -> str:
    address = server.new_user("extuser", PASSWORD)
    code, out = server.admin("user", "quota", address, "--bytes", "100K", "--messages", "50")
    assert code == 0, out
    return address


@pytest.fixture
def client(server: ServerProcess, user: str) -> Iterator[Any]:
    c = imapclient.IMAPClient(
        "127.0.0.1", port=server.ports["imaps"], ssl=True, ssl_context=tls_context(), timeout=30
    )
    c.login(user, PASSWORD)
    try:
        yield c
    finally:
        c.logout()


def test_imapclient_capabilities(client: Any) -> None:
    caps = client.capabilities()
    for cap in (
        b"LIST-EXTENDED",
        b"LIST-STATUS",
        b"ESEARCH",
        b"QUOTA",
        b"QUOTA=RES-STORAGE",
        b"QUOTA=RES-MESSAGE",
        b"APPENDLIMIT=%d" % LIMIT,
        b"STATUS=SIZE",
        b"MULTIAPPEND",
        b"WITHIN",
    ):
        assert cap in caps, cap


def test_imapclient_multiappend_quota_and_status(client: Any) -> None:
    result = client.multiappend("INBOX", [msg(1), {"msg": msg(2), "flags": [b"\\Seen"]}])
    typ, data = result
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ") and b" 1:2]" in data[0]
    roots, quotas = client.get_quota_root("INBOX")
    assert roots.mailbox == "INBOX" and roots.quota_roots == [""]
    by_resource = {q.resource: (q.usage, q.limit) for q in quotas}
    assert by_resource == {"STORAGE": (1, 100), "MESSAGE": (2, 50)}
    assert [(q.resource, q.usage) for q in client.get_quota()] == [("STORAGE", 1), ("MESSAGE", 2)]
    with pytest.raises(imapclient.exceptions.IMAPClientError):
        client.set_quota([imapclient.imapclient.Quota("", "STORAGE", 0, 500)])
    status = client.folder_status("INBOX", ["MESSAGES", "SIZE", "APPENDLIMIT", "UNSEEN"])
    assert status == {
        b"MESSAGES": 2,
        b"SIZE": len(msg(1)) + len(msg(2)),
        b"APPENDLIMIT": LIMIT,
        b"UNSEEN": 1,
    }
    # over the 100 KiB quota: NO [OVERQUOTA] and nothing of the batch stays
    big = b"Subject: big\r\n\r\n" + b"x" * 60_000 + b"\r\n"
    typ, data = client.multiappend("INBOX", [big, big])  # IMAPClient returns a NO
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 2


def test_imapclient_within(client: Any) -> None:
    client.append("INBOX", msg(1))  # internal date: now
    client.append("INBOX", msg(2), msg_time=datetime.datetime(2001, 1, 1))
    client.select_folder("INBOX")
    assert client.search(["YOUNGER", 3600]) == [1]
    assert client.search(["OLDER", 3600]) == [2]


def test_imaplib_esearch_and_list_status(server: ServerProcess, user: str) -> None:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=tls_context())
    try:
        m.login(user, PASSWORD)
        for i in range(4):
            m.append("INBOX", "(\\Flagged)" if i % 2 else None, None, msg(i))
        m.select("INBOX")
        typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "FLAGGED")
        assert typ == "OK"
        typ, data = m._untagged_response(typ, data, "ESEARCH")
        assert data[-1].endswith(b"MIN 2 MAX 4 ALL 2,4 COUNT 2")
        m.create("Work/Reports")
        typ, data = m._simple_command(
            "LIST", "(SPECIAL-USE)", '""', '"*"', "RETURN", "(STATUS (MESSAGES SIZE))"
        )
        assert typ == "OK"
        lists = m.untagged_responses.pop("LIST", [])
        statuses = m.untagged_responses.pop("STATUS", [])
        assert len(lists) == len(statuses) == 5  # Sent Drafts Trash Junk Archive
        assert all(b"(MESSAGES 0 SIZE 0)" in s for s in statuses)
        typ, data = m._simple_command("LIST", '""', '("INBOX" "Work/%")', "RETURN", "(CHILDREN)")
        lists = m.untagged_responses.pop("LIST", [])
        assert lists == [
            b'(\\HasNoChildren) "/" "INBOX"',
            b'(\\HasNoChildren) "/" "Work/Reports"',
        ]
    finally:
        m.logout()
