"""Secret redaction in log lines: passwords go, ordinary words stay readable."""

from __future__ import annotations

from pillarbox.log import redact


def test_secrets_are_redacted() -> None:
    assert redact("a1 LOGIN alice s3cret") == "a1 LOGIN alice [redacted]"
    assert redact("PASS hunter2 and more") == "PASS [redacted]"
    assert "dGVzdA" not in redact("AUTHENTICATE PLAIN dGVzdA==")


def test_pop3_login_line_stays_readable() -> None:
    """The POP3 login notice (server/pop3.py) is not mistaken for a LOGIN command."""
    line = "pop3-8 POP3 alice@example.test logged in, 3 messages"
    assert redact(line) == line
