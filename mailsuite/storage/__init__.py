"""mailsuite.storage package."""
