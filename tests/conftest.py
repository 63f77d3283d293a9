"""Shared fixtures for the mailsuite test suite.

``tests/harness.py`` starts the real server in a subprocess; tests that need
one use the ``server_factory`` fixture (each call starts a server with its own
data dir and free ports; all are stopped at the end of the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ServerProcess


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(**kw: Any) -> ServerProcess:
        sub = tmp_path / f"srv{len(started)}"
        sub.mkdir()
        srv = ServerProcess(sub, **kw)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
