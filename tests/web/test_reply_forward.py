"""Reply, reply-all and forward from the message page, seen by the recipient over IMAP.

Pins: the message page links to all four; a reply quotes the original ("On DATE, NAME
wrote:" and "> " lines), says "Re: " once, goes to Reply-To, and arrives with
In-Reply-To and References (RFC 5322 §3.6.4); the original then has \\Answered over
IMAP. Reply-all copies the other recipients but none of alice's own addresses (her
aliases included). A forward says "Fwd: " once, quotes the original's fields and
carries its attachments; forward as attachment carries the original byte for byte as
message/rfc822 (RFC 2046 §5.2.1); either sets $Forwarded on the original.
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append
from tests.web.compose_support import (
    flags_of,
    form_of,
    messages,
    parse,
    post_compose,
    text_of,
    uidvalidity,
)

ORIGINAL = (
    b"From: Bob Builder <bob@example.test>\r\n"
    b"Reply-To: Bob at home <bob@example.test>\r\n"
    b"To: alice@example.test, carol@other.test\r\n"
    b"Cc: sales@example.test, Dave <dave@other.test>\r\n"
    b"Subject: Re: RE: Plans\r\n"
    b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <plans-2@example.test>\r\n"
    b"In-Reply-To: <plans-1@example.test>\r\n"
    b"References: <plans-0@example.test> <plans-1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Shall we meet on Friday?\r\n"
    b"Bring the map.\r\n"
    b"--b1\r\n"
    b"Content-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="map.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKbWFw\r\n"
    b"--b1--\r\n"
)


def _original(server: RunningServer) -> tuple[int, int]:
    accounts = server.services.accounts
    server.call(lambda: accounts.add_alias("sales@example.test", ["alice@example.test"]))
    uid = append(server, "alice@example.test", ORIGINAL)
    return uidvalidity(server, "alice@example.test", "INBOX"), uid


def _compose_url(mode: str, v: int, uid: int) -> str:
    return "/compose?" + urlencode({"mode": mode, "f": "INBOX", "v": v, "uid": uid})


def test_message_page_links_reply_and_forward(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    page = alice.get("/read?" + urlencode({"f": "INBOX", "v": v, "uid": uid})).text
    for mode in ("reply", "replyall", "forward", "forward_attach"):
        assert _compose_url(mode, v, uid).replace("&", "&amp;") in page, mode


def test_reply_threads_and_marks_answered(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    page = alice.get(_compose_url("reply", v, uid))
    assert page.status_code == 200
    fields = form_of(page.text)
    assert fields["to"] == '"Bob at home" <bob@example.test>' or fields["to"].endswith(
        "<bob@example.test>"
    )
    assert fields["cc"] == ""
    assert fields["subject"] == "Re: Plans"  # not "Re: Re: RE: Plans"
    assert "On Sat, 05 Dec 2026 10:00:00 +0000, Bob Builder wrote:" in fields["body"]
    assert "> Shall we meet on Friday?\n> Bring the map." in fields["body"]
    assert "\\Answered" not in flags_of(server, "alice@example.test", "INBOX", uid)

    fields["body"] = "Yes, Friday.\n" + fields["body"]
    reply = post_compose(alice, fields)
    assert reply.status_code == 303, reply.text
    got = messages(server, "bob@example.test", "INBOX")
    assert len(got) == 1
    message = parse(got[0][1])
    assert message["Subject"] == "Re: Plans"
    assert message["In-Reply-To"] == "<plans-2@example.test>"
    assert " ".join(str(message["References"]).split()) == (
        "<plans-0@example.test> <plans-1@example.test> <plans-2@example.test>"
    )
    assert "> Bring the map." in text_of(message, "plain")
    assert "\\Answered" in flags_of(server, "alice@example.test", "INBOX", uid)
    assert "$Forwarded" not in flags_of(server, "alice@example.test", "INBOX", uid)


def test_reply_all_leaves_out_own_addresses(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    fields = form_of(alice.get(_compose_url("replyall", v, uid)).text)
    assert "bob@example.test" in fields["to"]
    assert fields["cc"] == "carol@other.test, Dave <dave@other.test>"
    assert "alice@" not in fields["to"] + fields["cc"]
    assert "sales@" not in fields["to"] + fields["cc"]  # alice's alias is hers too
    assert fields["from"] == "alice@example.test"


def test_forward_inline_carries_attachments(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    page = alice.get(_compose_url("forward", v, uid)).text
    fields = form_of(page)
    assert fields["subject"] == "Fwd: Re: RE: Plans"
    assert fields["to"] == ""
    assert "---------- Forwarded message ----------" in fields["body"]
    assert "From: Bob Builder <bob@example.test>" in fields["body"]
    assert "Shall we meet on Friday?" in fields["body"]
    assert "map.pdf" in page
    fields["to"] = "carol@other.test"
    assert post_compose(alice, fields, keep=["0"]).status_code == 303
    got = messages(server, "carol@other.test", "INBOX")
    message = parse(got[0][1])
    assert message["Subject"] == "Fwd: Re: RE: Plans"
    assert "In-Reply-To" not in message
    (attached,) = list(message.iter_attachments())
    assert attached.get_filename() == "map.pdf"
    assert attached.get_content() == b"%PDF-1.4\nmap"
    flags = flags_of(server, "alice@example.test", "INBOX", uid)
    assert "$Forwarded" in flags and "\\Answered" not in flags


def test_forward_unticked_attachment_is_left_out(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    fields = form_of(alice.get(_compose_url("forward", v, uid)).text)
    fields["to"] = "carol@other.test"
    assert post_compose(alice, fields, keep=[]).status_code == 303
    message = parse(messages(server, "carol@other.test", "INBOX")[0][1])
    assert list(message.iter_attachments()) == []


def test_forward_as_attachment_is_byte_exact(server: RunningServer, alice: WebClient) -> None:
    v, uid = _original(server)
    fields = form_of(alice.get(_compose_url("forward_attach", v, uid)).text)
    assert fields["subject"] == "Fwd: Re: RE: Plans"
    fields.update(to="carol@other.test", body="See the message attached.")
    assert post_compose(alice, fields, keep=["0"]).status_code == 303
    raw = messages(server, "carol@other.test", "INBOX")[0][1]
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    (attached,) = list(message.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert ORIGINAL in raw  # RFC 2046 §5.2.1: the forwarded message as it was
    assert "$Forwarded" in flags_of(server, "alice@example.test", "INBOX", uid)


def test_reply_to_a_message_of_another_account_is_404(
    server: RunningServer, alice: WebClient
) -> None:
    uid = append(server, "bob@example.test", ORIGINAL)
    v = uidvalidity(server, "bob@example.test", "INBOX")
    assert alice.get(_compose_url("reply", v, uid)).status_code == 404


def test_forward_as_attachment_through_a_draft(server: RunningServer, alice: WebClient) -> None:
    original = (
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: caf\xc3\xa9\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        b"\r\nUn caf\xc3\xa9,   with   spaces  \r\n"
    )
    uid = append(server, "alice@example.test", original)
    v = uidvalidity(server, "alice@example.test", "INBOX")
    fields = form_of(alice.get(_compose_url("forward_attach", v, uid)).text)
    fields.update(to="carol@other.test", action="draft")
    saved = post_compose(alice, fields, keep=["0"])
    assert saved.status_code == 200
    fields = form_of(saved.text)
    fields["action"] = "send"
    assert post_compose(alice, fields, keep=["0"]).status_code == 303
    raw = messages(server, "carol@other.test", "INBOX")[0][1]
    assert original in raw
    assert "$Forwarded" in flags_of(server, "alice@example.test", "INBOX", uid)


def test_reply_to_own_sent_message_goes_to_its_recipients(
    server: RunningServer, alice: WebClient
) -> None:
    sent = (
        b"From: alice@example.test\r\nTo: Bob <bob@example.test>\r\nSubject: Mine\r\n"
        b"Message-ID: <mine@example.test>\r\n\r\nSent by me.\r\n"
    )
    uid = append(server, "alice@example.test", sent, mailbox="Sent")
    v = uidvalidity(server, "alice@example.test", "Sent")
    query = urlencode({"mode": "reply", "f": "Sent", "v": v, "uid": uid})
    fields = form_of(alice.get("/compose?" + query).text)
    assert fields["to"] == "Bob <bob@example.test>"


def test_forward_of_html_mail_keeps_its_formatting(server: RunningServer, alice: WebClient) -> None:
    original = (
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: Styled\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Look at <b>this</b><script>alert(1)</script></p>\r\n"
    )
    uid = append(server, "alice@example.test", original)
    v = uidvalidity(server, "alice@example.test", "INBOX")
    fields = form_of(alice.get(_compose_url("forward", v, uid)).text)
    assert "<b>this</b>" in fields["html"] and "script" not in fields["html"]
    assert "Look at this" in fields["body"]  # the text part, made from the HTML
