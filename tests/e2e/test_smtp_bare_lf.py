"""Bare line feeds end to end, in both `[smtp] bare_newline` modes: what a script sending
with `smtplib.SMTP.sendmail(msg.as_bytes())` (LF line ends) gets, and command lines
ending in a bare LF."""

from __future__ import annotations

import imaplib
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import RawSmtp, mailbox


def lf_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "script@remote.test"
    msg["To"] = "bob@example.test"
    msg["Subject"] = "nightly report"
    msg.set_content("line one\n.\n.leading dot\nlast line\n")
    data = msg.as_bytes()
    assert b"\r" not in data and b"\n.\n" in data  # LF only, with a "." line
    return data


def fetch_all(server: RunningServer, user: str) -> list[bytes]:
    """Every message of the user's INBOX as IMAP serves it (BODY.PEEK[])."""
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        client.login(user, PASSWORD)
        client.select("INBOX", readonly=True)
        typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        client.logout()


def test_lf_only_message_normalized(server: RunningServer) -> None:
    """normalize (the default): the LF-only message is accepted and served over IMAP with
    CRLF line ends only, its "." and ".leading dot" lines intact."""
    data = lf_message()
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        assert client.sendmail("script@remote.test", ["bob@example.test"], data) == {}
    [stored] = fetch_all(server, "bob@example.test")
    assert stored.count(b"\n") == stored.count(b"\r\n")
    assert b"\r" not in stored.replace(b"\r\n", b"")
    expected = data.replace(b"\n", b"\r\n")
    assert stored.endswith(expected + b"\r\n")  # smtplib adds CRLF before "."
    assert b"\r\nline one\r\n.\r\n.leading dot\r\nlast line\r\n" in stored


def test_lf_only_message_rejected(server_factory: Callable[..., RunningServer]) -> None:
    """reject: the same message is refused with 554 5.6.0 and nothing is stored."""
    server = server_factory(smtp={"bare_newline": "reject"})
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("script@remote.test", ["bob@example.test"], lf_message())
        assert info.value.smtp_code == 554
        assert info.value.smtp_error.startswith(b"5.6.0 ")
        assert client.noop()[0] == 250  # the session goes on
    assert mailbox(server, "bob@example.test") == []


@pytest.mark.parametrize("mode", ["normalize", "reject"])
def test_command_lines_ending_in_lf(
    server_factory: Callable[..., RunningServer], mode: str
) -> None:
    """normalize: a bare LF ends a command line. reject: such a line is refused with
    500 5.5.2 and consumed, so the pipelined `MAIL ...\\nRCPT ...\\r\\n` is one refused
    line and a RCPT without MAIL."""
    server = server_factory(smtp={"bare_newline": mode})
    raw = RawSmtp(server.port("smtp"))
    try:
        assert raw.cmd(b"EHLO c.test").startswith(b"250")
        raw.send(b"MAIL FROM:<a@remote.test>\nRCPT TO:<bob@example.test>\r\n")
        if mode == "normalize":
            assert raw.reply().startswith(b"250 2.1.0")
            assert raw.reply().startswith(b"250 2.1.5")
        else:
            assert raw.reply() == b"500 5.5.2 Bare <LF> received; lines must end with <CR><LF>"
            assert raw.reply().startswith(b"503 5.5.1")
        assert raw.cmd(b"QUIT").startswith(b"221")
    finally:
        raw.close()
