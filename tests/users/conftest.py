"""Fixtures for the user directory and authentication tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsuite.config import AuthConfig, UsersConfig
from mailsuite.users.directory import SQLiteDirectory
from mailsuite.users.passwords import Argon2Params, PasswordHasher

#: Cheap argon2id parameters so the suite stays fast (the defaults are tested separately).
CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(CHEAP)


@pytest.fixture
def auth_config() -> AuthConfig:
    return AuthConfig(
        argon2_time_cost=CHEAP.time_cost,
        argon2_memory_cost=CHEAP.memory_cost,
        argon2_parallelism=CHEAP.parallelism,
    )


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[SQLiteDirectory]:
    d = SQLiteDirectory(tmp_path / "users.sqlite", UsersConfig())
    yield d
    d.close()
