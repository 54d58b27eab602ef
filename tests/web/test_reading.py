"""Folders, message lists and reading, over real HTTP, checked over IMAP.

Pins: the folder list has every mailbox with its unread count; the list shows sender,
subject, the preview stored at delivery and flags, newest first, in pages; opening a
message shows its headers and text with links made clickable and escaped, and sets
\\Seen so that an IMAP session sees it; one account's session cannot reach another's
messages by editing the URL, nor a message after UIDVALIDITY changed (404 each).
"""

from __future__ import annotations

import re

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append, imap_login

PLAIN = (
    b"From: Bob Example <bob@example.test>\r\nTo: alice@example.test\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9_plans?=\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
    b"\r\nLunch at https://example.test/menu?a=1&b=2 <b>not bold</b>, ok?\r\n"
)


def _link(page: str, pattern: str) -> str:
    match = re.search(pattern, page)
    assert match, pattern
    return match.group(1).replace("&amp;", "&")


def test_folders_and_list(server: RunningServer, alice: WebClient) -> None:
    append(server, "alice@example.test", PLAIN)
    append(server, "alice@example.test", b"From: carol@other.test\r\nSubject: s2\r\n\r\nx\r\n")
    page = alice.get("/folder?f=INBOX").text
    for name in ("INBOX", "Drafts", "Sent", "Junk", "Trash"):
        assert f'<span class="name">{name}</span>' in page
    assert '<span class="count" title="unread">2</span>' in page
    assert "2 messages, 2 unread" in page
    assert page.index("carol@other.test") < page.index("Bob Example")  # newest first
    assert "café plans" in page
    assert "Lunch at https://example.test/menu?a=1&amp;b=2 &lt;b&gt;not bold&lt;/b&gt;" in page


def test_paging(server: RunningServer, alice: WebClient) -> None:
    imap = imap_login(server, "alice@example.test")
    try:
        for n in range(55):
            imap.append("INBOX", "", None, f"Subject: number {n}\r\n\r\nbody {n}\r\n".encode())
    finally:
        imap.logout()
    first = alice.get("/folder?f=INBOX").text
    assert "Page 1 of 2" in first and "number 54" in first and "number 4<" not in first
    second = alice.get("/folder?f=INBOX&page=2").text
    assert "number 4<" in second and "number 0<" in second and "number 5<" not in second


def test_reading_marks_seen_for_imap(server: RunningServer, alice: WebClient) -> None:
    uid = append(server, "alice@example.test", PLAIN)
    imap = imap_login(server, "alice@example.test")
    try:
        imap.select("INBOX")
        assert b"\\Seen" not in imap.uid("FETCH", str(uid), "(FLAGS)")[1][0]
        link = _link(alice.get("/folder?f=INBOX").text, r'href="(/read\?[^"]+)"')
        page = alice.get(link)
        assert page.status_code == 200
        assert "Bob Example &lt;bob@example.test&gt;" in page.text
        assert (
            '<a href="https://example.test/menu?a=1&amp;b=2" target="_blank" '
            'rel="noopener noreferrer">'
        ) in page.text
        assert "&lt;b&gt;not bold&lt;/b&gt;" in page.text
        imap.noop()
        assert b"\\Seen" in imap.uid("FETCH", str(uid), "(FLAGS)")[1][0]
    finally:
        imap.logout()
    assert '<span class="count"' not in alice.get("/folder?f=INBOX").text


def test_cross_site_link_does_not_mark_seen(server: RunningServer, alice: WebClient) -> None:
    uid = append(server, "alice@example.test", PLAIN)
    mailbox = server.call(lambda: server.store.get_account("alice@example.test"))
    inbox = server.call(lambda: server.store.get_mailbox(mailbox.id, "INBOX"))
    url = f"/read?f=INBOX&v={inbox.uidvalidity}&uid={uid}"
    assert alice.get(url, headers={"sec-fetch-site": "cross-site"}).status_code == 200
    assert '<span class="count" title="unread">1</span>' in alice.get("/folder?f=INBOX").text


def test_another_accounts_message_is_not_found(server: RunningServer, alice: WebClient) -> None:
    bob_uid = append(server, "bob@example.test", b"Subject: bob's secret\r\n\r\nsecret\r\n")
    bob = server.call(lambda: server.store.get_account("bob@example.test"))
    bob_inbox = server.call(lambda: server.store.get_mailbox(bob.id, "INBOX"))
    alice_account = server.call(lambda: server.store.get_account("alice@example.test"))
    alice_inbox = server.call(lambda: server.store.get_mailbox(alice_account.id, "INBOX"))
    tries = [
        f"/read?f=INBOX&v={bob_inbox.uidvalidity}&uid={bob_uid}",
        f"/read?f=INBOX&v={alice_inbox.uidvalidity}&uid={bob_uid}",
        f"/read/body?f=INBOX&v={alice_inbox.uidvalidity}&uid={bob_uid}&part=1",
        f"/read/attachment?f=INBOX&v={alice_inbox.uidvalidity}&uid={bob_uid}&part=1",
        f"/read?f=bob@example.test/INBOX&v={bob_inbox.uidvalidity}&uid={bob_uid}",
        f"/read?f=../bob/INBOX&v={bob_inbox.uidvalidity}&uid={bob_uid}",
        f"/folder?f={bob_inbox.id}",
        "/read?f=INBOX&v=x&uid=-1",
    ]
    for url in tries:
        reply = alice.get(url)
        assert reply.status_code == 404, url
        assert "secret" not in reply.text
    imap = imap_login(server, "bob@example.test")
    try:
        imap.select("INBOX")
        assert b"\\Seen" not in imap.uid("FETCH", str(bob_uid), "(FLAGS)")[1][0]
    finally:
        imap.logout()


def test_old_uidvalidity_is_not_found(server: RunningServer, alice: WebClient) -> None:
    uid = append(server, "alice@example.test", PLAIN)
    account = server.call(lambda: server.store.get_account("alice@example.test"))
    inbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    good = f"/read?f=INBOX&v={inbox.uidvalidity}&uid={uid}"
    assert alice.get(good).status_code == 200
    stale = f"/read?f=INBOX&v={inbox.uidvalidity - 1}&uid={uid}"
    assert alice.get(stale).status_code == 404


def test_folder_names_travel_safely_in_urls(server: RunningServer, alice: WebClient) -> None:
    """A folder named with spaces, '&', '?' and non-ASCII (created over IMAP in modified
    UTF-7, RFC 9051 §5.1.3) is linked, listed and read through its URL."""
    imap = imap_login(server, "alice@example.test")
    try:
        name = "Projects/Q&A? \u00c4rger"
        encoded = '"Projects/Q&-A? &AMQ-rger"'
        assert imap.create(encoded)[0] == "OK"
        typ, data = imap.append(encoded, "", None, b"Subject: in the folder\r\n\r\nx\r\n")
        assert typ == "OK", data
    finally:
        imap.logout()
    folders = alice.get("/folder?f=INBOX").text
    href = _link(folders, r'href="(/folder\?f=Projects[^"]+)"')
    assert "&" not in href.split("?f=")[1].replace("%26", "")  # the name's & is encoded
    page = alice.get(href)
    assert page.status_code == 200
    assert f"<h1>{name.replace('&', '&amp;')} " in page.text
    read = alice.get(_link(page.text, r'href="(/read\?[^"]+)"'))
    assert read.status_code == 200 and "in the folder" in read.text


def test_large_message_reads(server: RunningServer, alice: WebClient) -> None:
    """A message above the in-thread threshold (walked off the event loop) reads the
    same: its text and its attachment."""
    big = b"A" * 76 + b"\r\n"
    data = (
        b"From: bob@example.test\r\nSubject: big one\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nthe text\r\n--b\r\n"
        b"Content-Type: application/octet-stream; name=big.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + big * 8000 + b"--b--\r\n"
    )
    uid = append(server, "alice@example.test", data)
    account = server.call(lambda: server.store.get_account("alice@example.test"))
    inbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    page = alice.get(f"/read?f=INBOX&v={inbox.uidvalidity}&uid={uid}")
    assert page.status_code == 200
    assert "the text" in page.text and "big.bin" in page.text
