"""MAIL (RFC 5321 §4.1.1.2) and RCPT (§4.1.1.3) with the role policies.

MAIL:
* submission roles: STARTTLS before AUTH (unless ``auth.allow_plaintext``),
  AUTH before MAIL (530 5.7.0); the sender must be one of the user's
  addresses (``Directory.sender_addresses``) unless ``smtp.sender_policy``
  is ``"any"`` (553 5.7.1; the null sender is refused under "own").
* parameters as in :mod:`mailsuite.smtp.params`; a non-ASCII sender needs
  SMTPUTF8 (553 5.6.7).

RCPT:
* the MX role (``smtp``) accepts only addresses in local domains and never
  relays (554 5.7.1); local parts with ``%`` or ``!`` (the percent hack,
  UUCP paths) are refused there outright.  Quoted local parts that are not
  plain dot-strings are refused on every role (553 5.1.3).
* every recipient is resolved through ``Directory.resolve`` off the reactor
  thread, batched with other sessions' lookups (:mod:`mailsuite.smtp.lookups`;
  unknown local user -> 550 5.1.1).  Addresses outside our domains
  (submission) and forwarding aliases need the outbound queue; without one
  they get ``451 4.4.0``.
* at most ``smtp.max_recipients`` per message (452 4.5.3); a recipient
  given twice is accepted once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from mailsuite.config import UsersConfig
from mailsuite.errors import ErrorKind, MailError
from mailsuite.interfaces import Directory, Resolution
from mailsuite.smtp import replies
from mailsuite.smtp.address import Path, parse_path, parse_postmaster
from mailsuite.smtp.params import MailParams, parse_mail_params, parse_rcpt_params
from mailsuite.smtp.replies import Refused
from mailsuite.smtp.states import State
from mailsuite.smtp.transaction import Transaction
from mailsuite.users.addresses import normalise, strip_subaddress

if TYPE_CHECKING:
    from mailsuite.smtp.session import SMTPSession


def _after_keyword(args: str, keyword: str) -> str:
    """The text after ``FROM:``/``TO:`` (case-insensitive; spaces after the
    colon tolerated as most servers do)."""
    if args[: len(keyword)].upper() != keyword:
        raise Refused(replies.BAD_SYNTAX)
    return args[len(keyword) :].lstrip(" ")


# -- MAIL ---------------------------------------------------------------------
def _mail_policy_refusal(session: SMTPSession) -> replies.Reply | None:
    if not session.is_submission or session.user is not None:
        return None
    if not session.auth_allowed():
        return replies.TLS_REQUIRED
    return replies.AUTH_REQUIRED


def cmd_mail(session: SMTPSession, args: str) -> defer.Deferred[Any] | None:
    refusal = _mail_policy_refusal(session)
    if refusal is not None:
        session.reply(refusal)
        return None
    path, rest = parse_path(_after_keyword(args, "FROM:"), allow_null=True)
    params = parse_mail_params(rest, session.config.max_message_size, session.esmtp)
    if not path.ascii and not params.smtputf8:
        raise Refused(replies.NEEDS_SMTPUTF8)
    if not session.is_submission or session.config.sender_policy == "any":
        _start(session, path, params)
        return None
    if path.is_null:
        raise Refused(replies.SENDER_NOT_OWNED)
    assert session.user is not None
    context = session.context
    d = session.factory.lookups.run(
        _sender_owned, context.directory, session.user.address, path.mailbox, context.config.users
    )
    d.addCallbacks(
        _sender_checked,
        _lookup_failed,
        callbackArgs=(session, path, params),
        errbackArgs=(session,),
    )
    return d


def _start(session: SMTPSession, path: Path, params: MailParams) -> None:
    session.tx = Transaction(path, params)
    session.state = State.MAIL
    session.reply(replies.SENDER_OK)


def _sender_owned(directory: Directory, user: str, sender: str, config: UsersConfig) -> bool:
    """Blocking: is ``sender`` one of ``user``'s addresses (normalised compare)?

    ``user+tag@domain`` (RFC 5233 subaddress) counts as ``user@domain``.
    Catch-all aliases (``@domain``) do not make every address of the domain
    the user's own: that would let one user send as another.
    """
    case_sensitive = config.localpart_case_sensitive
    try:
        wanted = {normalise(sender, case_sensitive)}
    except MailError:
        return False
    local, _, domain = next(iter(wanted)).rpartition("@")
    base = strip_subaddress(local, config.subaddress_separator)
    if base is not None:
        wanted.add(f"{base}@{domain}")
    owned = set()
    for address in directory.sender_addresses(user):
        try:
            owned.add(normalise(address, case_sensitive))
        except MailError:
            continue
    return bool(wanted & owned)


def _sender_checked(owned: bool, session: SMTPSession, path: Path, params: MailParams) -> None:
    if owned:
        _start(session, path, params)
    else:
        session.log.info("{cid} sender not owned by user", cid=session.conn_id)
        session.reply(replies.SENDER_NOT_OWNED)


def _lookup_failed(failure: Failure, session: SMTPSession) -> None:
    error = failure.value
    if isinstance(error, MailError):
        session.log.info("{cid} directory: {error}", cid=session.conn_id, error=str(error))
    else:
        session.log.failure("{cid} directory lookup failed", failure, cid=session.conn_id)
    session.reply(replies.from_error(error))


# -- RCPT ---------------------------------------------------------------------
def _parse_recipient(session: SMTPSession, args: str) -> tuple[Path, str]:
    text = _after_keyword(args, "TO:")
    special = parse_postmaster(text, session.hostname)
    path, rest = special or parse_path(text, allow_null=False)
    if path.quoted:
        raise Refused(replies.QUOTED_LOCALPART)
    assert session.tx is not None
    if not path.ascii and not session.tx.params.smtputf8:
        raise Refused(replies.NEEDS_SMTPUTF8)
    if session.role == "smtp" and ("%" in path.local or "!" in path.local):
        raise Refused(replies.RELAY_DENIED)
    return path, rest


def cmd_rcpt(session: SMTPSession, args: str) -> defer.Deferred[Any] | None:
    tx = session.tx
    assert tx is not None
    path, rest = _parse_recipient(session, args)
    rcpt_params = parse_rcpt_params(rest, session.esmtp)
    if path.mailbox in tx.recipients:
        session.reply(replies.RECIPIENT_OK)
        return None
    if len(tx.recipients) >= session.config.max_recipients:
        session.reply(replies.TOO_MANY_RCPTS)
        return None
    if path.literal:
        # Address literals are never local domains (we do not accept mail
        # for "user@[our IP]"): relay on submission, refuse on MX.
        _resolved(None, session, path, rcpt_params)
        return None
    d = session.factory.lookups.run(_resolve, session.context.directory, path)
    d.addCallbacks(
        _resolved,
        _lookup_failed,
        callbackArgs=(session, path, rcpt_params),
        errbackArgs=(session,),
    )
    return d


def _resolve(directory: Directory, path: Path) -> Resolution | None:
    """Blocking: None for a domain that is not ours, else the resolution
    (raises MailError UNKNOWN_MAILBOX, BAD_ADDRESS, ALIAS_LOOP ...)."""
    both = getattr(directory, "resolve_local", None)
    if both is not None:  # SQLiteDirectory: one transaction instead of two
        result: Resolution | None = both(path.mailbox)
        return result
    if not directory.is_local_domain(path.domain):
        return None
    return directory.resolve(path.mailbox)


def _resolved(
    resolution: Resolution | None,
    session: SMTPSession,
    path: Path,
    rcpt_params: dict[str, str],
) -> None:
    tx = session.tx
    if tx is None:  # the session ended while the lookup ran
        return
    if resolution is None:
        if session.role == "smtp":
            session.log.info("{cid} relay attempt refused", cid=session.conn_id)
            session.reply(replies.RELAY_DENIED)
            return
        resolution = Resolution(remote=(path.mailbox,))
    if resolution.remote and session.context.queue is None:
        session.reply(replies.QUEUE_UNAVAILABLE)
        return
    if not resolution.local and not resolution.remote:
        session.reply(replies.from_error(MailError(ErrorKind.UNKNOWN_MAILBOX)))
        return
    tx.add(path.mailbox, resolution.local, resolution.remote, rcpt_params)
    session.state = State.RCPT
    session.reply(replies.RECIPIENT_OK)
