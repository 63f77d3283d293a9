"""Logging: one line per event with a connection id; never a password or an
authentication blob (issue 2, item 7)."""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
from pathlib import Path

from tests.harness import ServerProcess

SECRET = "Tr0ub4dor&3-unique-secret"
WRONG = "wrong-Password-9f2c1"


def test_no_passwords_in_log(tmp_path: Path) -> None:
    srv = ServerProcess(
        tmp_path,
        extra_config={"auth": {"allow_plaintext": True, "throttle_base_delay": 0.0}},
        roles=("submission", "pop3", "imap"),
    ).start()
    try:
        srv.add_user("alice@example.test", SECRET)
        for password in (SECRET, WRONG):
            with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=30) as s:
                s.ehlo("client.example.test")
                try:
                    s.login("alice@example.test", password)
                except smtplib.SMTPAuthenticationError:
                    pass
            p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=30)
            try:
                p.user("alice@example.test")
                p.pass_(password)
            except poplib.error_proto:
                pass
            p.quit()
            m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=30)
            try:
                m.login("alice@example.test", password)
            except imaplib.IMAP4.error:
                pass
            m.logout()
    finally:
        srv.stop()
    log = srv.log()
    assert "connect from" in log
    for password in (SECRET, WRONG):
        blob = base64.b64encode(f"\0alice@example.test\0{password}".encode()).decode()
        assert password not in log
        assert blob not in log
        assert base64.b64encode(password.encode()).decode() not in log
    # protocol events carry a connection id
    events = [line for line in log.splitlines() if "connect from" in line]
    assert events and all(re.search(r"\bc\d+ connect from", line) for line in events)


def test_clean_run_logs_no_traceback(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, roles=("imap",)) as srv:
        pass
    assert "Traceback" not in srv.log()
