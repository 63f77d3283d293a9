"""mailsuite.users package."""
