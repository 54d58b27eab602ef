"""The LMTP listener (RFC 2033) end to end with Python's `smtplib.LMTP`: LHLO, one reply
per accepted recipient after the data (a full mailbox fails only its own recipient),
local recipients only, HELO/EHLO refused."""

from __future__ import annotations

import imaplib
import smtplib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import RawSmtp, mailbox

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MSG = b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: via lmtp\r\n\r\nhello\r\n"


@pytest.fixture
def lmtp(server: RunningServer) -> Iterator[smtplib.LMTP]:
    """A connected, LHLO-greeted LMTP client (`with_ports_zero` enables the listener)."""
    client = smtplib.LMTP("127.0.0.1", server.port("lmtp"), timeout=30)
    try:
        code, _ = client.ehlo()  # smtplib.LMTP sends LHLO
        assert code == 250
        yield client
    finally:
        client.close()


def data_replies(client: smtplib.LMTP, count: int) -> list[tuple[int, bytes]]:
    """Send MSG with DATA and read `count` replies after the end of data (smtplib reads
    only the first; RFC 2033 §4.2 sends one per recipient)."""
    code, _ = client.docmd("DATA")
    assert code == 354
    client.send(MSG + b".\r\n")
    return [client.getreply() for _ in range(count)]


def imap_subjects(server: RunningServer, user: str) -> list[bytes]:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        client.login(user, PASSWORD)
        client.select("INBOX", readonly=True)
        typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        return [part[1].strip() for part in data if isinstance(part, tuple)]
    finally:
        client.logout()


def test_two_recipients_one_reply_each(server: RunningServer, lmtp: smtplib.LMTP) -> None:
    """LHLO offers the LMTP extensions (no AUTH, no DSN); two recipients get one 250
    each, and each can read the message over IMAP, marked as received with LMTP."""
    for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking"):
        assert lmtp.has_extn(ext), ext
    assert not lmtp.has_extn("auth") and not lmtp.has_extn("dsn")
    assert lmtp.mail("a@remote.test")[0] == 250
    assert lmtp.rcpt("alice@example.test")[0] == 250
    assert lmtp.rcpt("bob@example.test")[0] == 250
    replies = data_replies(lmtp, 2)
    assert [code for code, _ in replies] == [250, 250]
    assert b"<alice@example.test>" in replies[0][1] and b"<bob@example.test>" in replies[1][1]
    assert lmtp.noop()[0] == 250  # nothing else was pending
    for user in ("alice@example.test", "bob@example.test"):
        assert imap_subjects(server, user) == [b"Subject: via lmtp"]
    [stored] = mailbox(server, "alice@example.test")
    assert b" with LMTP id " in stored


def test_sendmail_through_lmtp(server: RunningServer, lmtp: smtplib.LMTP) -> None:
    """smtplib's own sendmail works over LMTP for a single recipient."""
    assert lmtp.sendmail("a@remote.test", ["bob@example.test"], MSG) == {}
    assert imap_subjects(server, "bob@example.test") == [b"Subject: via lmtp"]


def set_quota(server: RunningServer, address: str, quota: int) -> None:
    accounts: Any = server.services.accounts
    server.call(lambda: accounts.set_quota(address, quota))


@pytest.mark.parametrize("command", ["DATA", "BDAT"])
def test_over_quota_fails_only_its_recipient(
    server: RunningServer, lmtp: smtplib.LMTP, command: str
) -> None:
    """One recipient over quota gets 552 5.2.2, in RCPT order, while the others get 250
    and their copy; with DATA and with BDAT LAST alike (RFC 3030 with LMTP)."""
    set_quota(server, "bob@example.test", 10)
    assert lmtp.mail("a@remote.test")[0] == 250
    for rcpt in ("alice@example.test", "bob@example.test", "carol@other.test"):
        assert lmtp.rcpt(rcpt)[0] == 250
    if command == "DATA":
        replies = data_replies(lmtp, 3)
    else:
        lmtp.send(b"BDAT %d LAST\r\n" % len(MSG) + MSG)
        replies = [lmtp.getreply() for _ in range(3)]
    assert [code for code, _ in replies] == [250, 552, 250]
    assert replies[1][1].startswith(b"5.2.2 ")
    assert len(mailbox(server, "alice@example.test")) == 1
    assert mailbox(server, "bob@example.test") == []
    [copy] = mailbox(server, "carol@other.test")
    assert b"Delivered-To: carol@other.test\r\n" in copy
    assert copy.count(b"Received: ") == 1
    assert lmtp.noop()[0] == 250


def test_unknown_and_remote_recipients_refused(server: RunningServer, lmtp: smtplib.LMTP) -> None:
    """Only local recipients: an unknown user is 550 5.1.1 and another domain 550 5.7.1
    at RCPT; the end of data then has one reply, for the one accepted recipient."""
    assert lmtp.mail("a@remote.test")[0] == 250
    code, text = lmtp.rcpt("nobody@example.test")
    assert (code, text[:5]) == (550, b"5.1.1")
    code, text = lmtp.rcpt("victim@remote.test")
    assert (code, text[:5]) == (550, b"5.7.1")
    assert lmtp.rcpt("alice@example.test")[0] == 250
    assert [code for code, _ in data_replies(lmtp, 1)] == [250]
    assert lmtp.noop()[0] == 250
    assert len(mailbox(server, "alice@example.test")) == 1


def test_helo_ehlo_and_auth_refused(server: RunningServer) -> None:
    """RFC 2033 §4.1: HELO and EHLO are refused (500); the greeting says LMTP; AUTH is
    not available."""
    raw = RawSmtp(server.port("lmtp"))
    try:
        assert b" LMTP " in raw.greeting
        assert raw.cmd(b"HELO c.test").startswith(b"500 5.5.1")
        assert raw.cmd(b"EHLO c.test").startswith(b"500 5.5.1")
        assert raw.cmd(b"MAIL FROM:<a@remote.test>").startswith(b"503 5.5.1")
        assert raw.cmd(b"LHLO c.test").startswith(b"250-")
        assert raw.cmd(b"AUTH PLAIN AGFsaWNlAHg=").startswith(b"503 5.5.1")
        assert raw.cmd(b"QUIT").startswith(b"221")
    finally:
        raw.close()
