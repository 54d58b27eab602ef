"""Pillarbox: a complete, self-hosted mail server (SMTP, IMAP, POP3, webmail) on one store."""

__version__ = "0.1.0"
