"""The marks of a list row: attachments read from the stored part tree, and the flags
other clients set (\\Answered, $Forwarded) shown as they show them."""

from __future__ import annotations

import re

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append, imap_login

PLAIN = b"From: carol@other.test\r\nSubject: plain words\r\n\r\nJust text.\r\n"
WITH_FILE = (
    b"From: carol@other.test\r\nSubject: with a file\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
    b"\r\n%PDF\r\n--b--\r\n"
)
TEXT_FILE = (
    b"From: carol@other.test\r\nSubject: notes attached\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=n.txt\r\n"
    b"\r\nnotes\r\n--b--\r\n"
)
ALTERNATIVE = (
    b"From: carol@other.test\r\nSubject: two forms\r\n"
    b"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
    b"--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
    b"--a\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--a--\r\n"
)
INLINE_ONLY = (
    b"From: carol@other.test\r\nSubject: inline picture\r\n"
    b"Content-Type: multipart/related; boundary=r\r\n\r\n"
    b'--r\r\nContent-Type: text/html\r\n\r\n<img src="cid:p@x">\r\n'
    b"--r\r\nContent-Type: image/png\r\nContent-ID: <p@x>\r\n\r\n\x89PNG\r\n--r--\r\n"
)


def row_of(page: str, subject: str) -> str:
    rows = re.findall(r"<li class=.*?</li>", page, re.S)
    (row,) = [r for r in rows if subject in r]
    return row


def test_attachment_and_flag_marks(server: RunningServer, alice: WebClient) -> None:
    for message in (PLAIN, WITH_FILE, INLINE_ONLY, TEXT_FILE, ALTERNATIVE):
        append(server, "alice@example.test", message)
    imap = imap_login(server, "alice@example.test")
    try:
        imap.select("INBOX")
        assert imap.uid("STORE", "1", "+FLAGS", "(\\Answered $Forwarded)")[0] == "OK"
    finally:
        imap.logout()
    page = alice.get("/folder?f=INBOX").text
    assert 'title="has attachments"' in row_of(page, "with a file")
    assert 'title="has attachments"' not in row_of(page, "plain words")
    assert 'title="has attachments"' not in row_of(page, "inline picture")  # RFC 2387
    assert 'title="has attachments"' in row_of(page, "notes attached")
    assert 'title="has attachments"' not in row_of(page, "two forms")
    plain = row_of(page, "plain words")
    assert 'title="answered"' in plain and 'title="forwarded"' in plain
    assert 'title="forwarded"' not in row_of(page, "with a file")
