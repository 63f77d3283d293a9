"""mailsuite: an all-in-one mail server suite (SMTP, POP3, IMAP) on Twisted."""

__version__ = "0.1.0"
