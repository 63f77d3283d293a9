"""mailsuite.protocol package."""
