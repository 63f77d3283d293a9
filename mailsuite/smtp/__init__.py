"""Our ESMTP server (RFC 5321) for the smtp, submission and submissions roles.

Modules, top down:

* ``server`` — the listener factory (``make_factory``) for the three roles.
* ``session`` — the protocol: framing (strict CRLF), dispatch, replies,
  error counting, timeouts, STARTTLS state reset.
* ``commands`` — the command table (verb -> handler + allowed states) and the
  session-level commands; ``envelope`` (MAIL, RCPT and the role policies),
  ``content`` (DATA, BDAT), ``auth`` (AUTH over ``mailsuite.users.sasl``).
* ``transaction`` — the envelope being built and the writer that streams the
  message into the delivery agent and the outbound queue off the reactor.
* ``body`` (DATA/BDAT framing and content checks), ``address`` (paths),
  ``params`` (ESMTP parameters), ``headers`` (Return-Path, Received).
* ``replies`` — every reply text, and the one mapping of typed errors to codes.
"""
