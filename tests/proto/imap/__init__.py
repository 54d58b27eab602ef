"""Tests of the IMAP protocol core."""
