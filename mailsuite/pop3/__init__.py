"""The POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).

Modules:

* ``server`` — the session (a ``LineProtocol``) and ``make_factory`` for the
  ``pop3``/``pop3s`` roles;
* ``commands`` — the command table (handler + allowed states);
* ``authorization`` — CAPA, STLS, USER/PASS, AUTH, login, LOGIN-DELAY;
* ``transaction`` — STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT/UPDATE;
* ``maildrop`` — the snapshot taken at login and the blocking storage calls;
* ``stream`` — dot-stuffing, TOP cutting and the flow-controlled sender;
* ``replies`` — typed errors to ``-ERR [CODE] text``.
"""
