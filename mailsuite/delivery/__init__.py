"""mailsuite.delivery package."""
