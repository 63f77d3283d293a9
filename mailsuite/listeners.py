"""Listening sockets: bound from an endpoint string, or inherited.

:class:`Listener` is the service of one listener.  It listens in
``privilegedStartService`` (before twistd drops privileges, so ports below
1024 work with ``--uid``), raises at once if the port cannot be bound (the
server then refuses to start), keeps the listening port for
:mod:`mailsuite.workers` (which hands its socket to the child processes) and
stops listening in ``stopService``.

:class:`InheritedEndpoint` is the endpoint of a child process: it adopts a
listening socket the primary bound (``IReactorSocket.adoptStreamPort``) and
closes the inherited descriptor (the reactor keeps its own duplicate).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.workers import accept_one_at_a_time

#: address family names used on a child's command line
FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}


def family_name(port: Any) -> str:
    """The :data:`FAMILIES` name of a listening port's socket."""
    family = port.socket.family
    for name, value in FAMILIES.items():
        if value == family:
            return name
    raise ValueError(f"unsupported address family {family}")


class InheritedEndpoint:
    """``IStreamServerEndpoint`` over an inherited listening descriptor."""

    def __init__(self, reactor: Any, fd: int, family: str) -> None:
        self.reactor = reactor
        self.fd = fd
        self.family = FAMILIES[family]

    def listen(self, factory: Any) -> defer.Deferred[Any]:
        try:
            port = self.reactor.adoptStreamPort(self.fd, self.family, factory)
        except Exception:
            return defer.fail(Failure())
        finally:
            try:
                os.close(self.fd)
            except OSError:
                pass
        return defer.succeed(port)


class Listener(service.Service):
    """One listener (see the module docstring); ``port`` is the
    ``IListeningPort`` while it runs.  With ``shared_clock`` the socket is
    shared with other processes and the port accepts one connection per
    wake-up (:func:`mailsuite.workers.accept_one_at_a_time`)."""

    def __init__(self, endpoint: Any, factory: Any, shared_clock: Any = None) -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.shared_clock = shared_clock
        self.port: Any = None
        self._waiting: defer.Deferred[Any] | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self._listen()

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._listen()

    def _listen(self) -> None:
        if self._waiting is not None:
            return
        self._waiting = self.endpoint.listen(self.factory)
        failure: list[Failure] = []

        def listening(port: Any) -> None:
            self.port = port
            if self.shared_clock is not None:
                accept_one_at_a_time(port, self.shared_clock)

        self._waiting.addCallbacks(listening, failure.append)
        if failure:
            failure[0].raiseException()

    def stopService(self) -> defer.Deferred[Any] | None:
        super().stopService()  # type: ignore[no-untyped-call]
        waiting, self._waiting = self._waiting, None
        port, self.port = self.port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)
        if waiting is not None:
            waiting.cancel()
        return None
