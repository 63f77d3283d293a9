"""mailsuite.smtp package."""
