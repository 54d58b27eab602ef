"""Sending from the webmail goes through the submission service, like port 587.

Pins: alice's message to bob arrives in bob's INBOX (seen over IMAP) with alice's From,
a Message-ID and Date added by submission and a Received field naming HTTP; a \\Seen
copy is in alice's Sent; Bcc recipients get it but are not written into it; an unknown
local recipient is refused with the form kept; a malformed address is refused before
anything is sent.
"""

from __future__ import annotations

import email
import imaplib
from email.policy import default

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, hidden_fields, imap_login


def _messages(server: RunningServer, user: str, mailbox: str) -> list[tuple[bytes, bytes]]:
    """(FLAGS line, message bytes) of every message, over IMAP."""
    imap = imap_login(server, user)
    try:
        typ, _ = imap.select(mailbox, readonly=True)
        assert typ == "OK"
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
        if typ != "OK" or data == [None]:
            return []
        return [(item[0], item[1]) for item in data if isinstance(item, tuple)]
    except imaplib.IMAP4.error:
        return []
    finally:
        imap.logout()


def _send(client: WebClient, **fields: str) -> tuple[int, str, str]:
    data = {"to": "", "cc": "", "bcc": "", "subject": "", "body": "", **fields}
    reply = client.post("/compose", {**data, "csrf": client.csrf()})
    return reply.status_code, reply.headers.get("location", ""), reply.text


def test_alice_sends_to_bob(server: RunningServer, alice: WebClient) -> None:
    status, location, _ = _send(
        alice,
        to="Bob <bob@example.test>",
        bcc="carol@other.test",
        subject="Grüße from the web",
        body="Hello Bob,\nsee you at https://example.test/\n",
    )
    assert status == 303
    assert location == "/folder?f=INBOX&sent=local"
    assert "Message sent." in alice.get(location).text
    inbox = _messages(server, "bob@example.test", "INBOX")
    assert len(inbox) == 1
    message = email.message_from_bytes(inbox[0][1], policy=default)
    assert message["From"] == "alice@example.test"
    assert message["To"] == "Bob <bob@example.test>"
    assert str(message["Subject"]) == "Grüße from the web"
    assert message["Message-ID"] and message["Date"]
    assert "with HTTP id" in str(message["Received"])
    assert "Bcc" not in message and b"carol" not in inbox[0][1]
    text = message.get_content().replace("\r\n", "\n")
    assert text == "Hello Bob,\nsee you at https://example.test/\n"
    assert len(_messages(server, "carol@other.test", "INBOX")) == 1
    sent = _messages(server, "alice@example.test", "Sent")
    assert len(sent) == 1
    assert b"\\Seen" in sent[0][0]
    assert b"Subject: =?utf-8?" in sent[0][1]


def test_unknown_recipient_keeps_the_form(server: RunningServer, alice: WebClient) -> None:
    status, _, page = _send(alice, to="nobody@example.test", subject="kept", body="my text")
    assert status == 400
    assert "Not sent:" in page
    fields = hidden_fields(page)
    assert "csrf" in fields
    assert 'value="kept"' in page and "my text</textarea>" in page
    assert _messages(server, "alice@example.test", "Sent") == []


def test_malformed_address_is_refused(server: RunningServer, alice: WebClient) -> None:
    status, _, page = _send(alice, to="bob@example.test, not an address", body="x")
    assert status == 400
    assert "is not an email address" in page
    assert _messages(server, "bob@example.test", "INBOX") == []
    status, _, page = _send(alice, to="", body="x")
    assert status == 400 and "Add at least one recipient" in page
