"""mailsuite.admin package."""
