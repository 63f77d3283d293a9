"""IMAP command handlers, one module per family; each exports ``COMMANDS``."""
