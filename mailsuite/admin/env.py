"""What admin subcommands share: the config and lazily opened resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailsuite.admin import exits
from mailsuite.config import Config


class AdminError(Exception):
    """A failure reported as one line on stderr with a sysexits code."""

    def __init__(self, message: str, code: int = exits.SOFTWARE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class AdminEnv:
    """Per-invocation environment handed to every subcommand handler.

    Resources (directory, store, agent) are opened on first use through
    :meth:`resource` and closed by :meth:`close`; subcommand modules own the
    code that builds them, so this module stays independent of storage and
    users.
    """

    def __init__(self, config: Config, stdin: Any, stdout: Any) -> None:
        self.config = config
        self.stdin = stdin
        self.stdout = stdout
        self._resources: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def resource(self, name: str, build: Callable[[], Any]) -> Any:
        """The resource ``name``, built by ``build()`` the first time.  If the
        result has ``close()``, it is called by :meth:`close`."""
        if name not in self._resources:
            value = build()
            self._resources[name] = value
            closer = getattr(value, "close", None)
            if callable(closer):
                self._closers.append(closer)
        return self._resources[name]

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def close(self) -> None:
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:
                pass
