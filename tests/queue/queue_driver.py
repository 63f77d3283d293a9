"""Runs an OutboundQueue in its own process (for the crash test).

``python queue_driver.py DATA_DIR DNS_PORT MX_PORT``: the real reactor, a
thread-pool runner, the SQLite directory and Maildir agent under DATA_DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet import reactor

from mailsuite.config import QueueConfig, UsersConfig
from mailsuite.delivery.agent import MaildirDeliveryAgent
from mailsuite.delivery.queue import OutboundQueue
from mailsuite.storage.store import MaildirStore
from mailsuite.threads import ThreadPoolRunner
from mailsuite.users.directory import SQLiteDirectory


def main(data: Path, dns_port: int, mx_port: int) -> None:
    runner = ThreadPoolRunner(reactor)
    runner.start()
    directory = SQLiteDirectory(data / "users.sqlite", UsersConfig())
    agent = MaildirDeliveryAgent(MaildirStore(data / "mail"))
    config = QueueConfig(resolver=f"127.0.0.1:{dns_port}", mx_port=mx_port, scan_interval=0.2)
    queue = OutboundQueue(
        data / "queue", config, reactor, runner, agent, directory, "mail.example.test"
    )
    queue.start()
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
