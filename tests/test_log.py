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


def test_lower_case_commands_are_redacted_where_a_command_starts() -> None:
    assert redact("a1 login alice s3cret") == "a1 login alice [redacted]"
    assert redact("pass hunter2") == "pass [redacted]"
    assert redact("auth plain dGVzdA==") == "auth plain [redacted]"
    assert redact("password = hunter2") == "password = [redacted]"


def test_prose_in_our_own_log_lines_stays_readable() -> None:
    """Issue 16 item 7: the redaction garbled notices such as the POP3 login line."""
    for line in (
        "pop3-8 POP3 login you@example.org (5 messages)",
        "imap-3 login failed for bob@example.test from 192.0.2.1",
        "smtp-4 authentication failed for 'bob@example.test' from 192.0.2.1 (delay 1.0s)",
        "smtp-5 dkim=pass header.d=example.test spf=pass smtp.mailfrom=example.test",
        "queue-1 delivered to bob@remote.test, pass 2 of the retry schedule",
    ):
        assert redact(line) == line
