"""mailsuite.mime package."""
