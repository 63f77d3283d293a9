"""mailsuite.imap package."""
