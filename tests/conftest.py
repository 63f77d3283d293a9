"""Shared fixtures for the mailsuite test suite."""
