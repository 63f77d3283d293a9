"""mailsuite.pop3 package."""
