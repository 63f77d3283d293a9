"""twisted.cred pieces: the avatar interface, the checker and the realm.

One checker (:class:`DirectoryChecker`, for ``IUsernamePassword``) and one
realm (:class:`MailRealm`) serve every protocol.  The avatar for
:class:`IMailUser` is the user's :class:`mailsuite.interfaces.UserRecord`;
protocols take what they need (the address to open the store, the quotas)
from it.  The avatar ID is the normalised address (a ``str``).

The checker does no I/O itself: it calls ``verify(username, password)``,
a function returning a Deferred that fires with the normalised address or
fails with :class:`twisted.cred.error.UnauthorizedLogin`
(:class:`mailsuite.users.auth.DirectoryAuthenticator` provides it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from twisted.internet import defer
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface, implementer

from mailsuite.interfaces import UserRecord


class IMailUser(Interface):  # type: ignore[misc]
    """A logged-in mail user; the avatar provided is a ``UserRecord``."""

    address = Attribute("normalised address (localpart@a-label-domain)")
    enabled = Attribute("bool")
    quota_bytes = Attribute("int, 0 = unlimited")
    quota_messages = Attribute("int, 0 = unlimited")


@implementer(ICredentialsChecker)
class DirectoryChecker:
    """Checks username/password credentials through ``verify``."""

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, verify: Callable[[str, str], Deferred[str]]) -> None:
        self._verify = verify

    def requestAvatarId(self, creds: Any) -> Deferred[str]:
        try:
            username = bytes(creds.username).decode("utf-8")
            password = bytes(creds.password).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            return defer.fail(error.UnauthorizedLogin())
        return self._verify(username, password)


def _logout() -> None:
    return None


@implementer(IRealm)
class MailRealm:
    """Gives the ``UserRecord`` of the avatar ID, read fresh through ``lookup``."""

    def __init__(self, lookup: Callable[[str], Deferred[UserRecord | None]]) -> None:
        self._lookup = lookup

    def requestAvatar(
        self, avatarId: Any, mind: Any, *interfaces: Any
    ) -> Deferred[tuple[Any, UserRecord, Callable[[], None]]]:
        if IMailUser not in interfaces:
            return defer.fail(NotImplementedError("mailsuite offers only IMailUser avatars"))

        def found(record: UserRecord | None) -> tuple[Any, UserRecord, Callable[[], None]]:
            if record is None or not record.enabled:  # deleted/disabled meanwhile
                raise error.UnauthorizedLogin()
            return IMailUser, record, _logout

        return self._lookup(str(avatarId)).addCallback(found)
