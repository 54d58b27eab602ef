""" "Show original" and downloads: the stored bytes, safely typed, streamed.

Pins: the message page links "Show original"; it answers the exact stored message
(as IMAP BODY.PEEK[] gives it) as text/plain; charset=utf-8 with nosniff and a sandbox
CSP, so markup in a message is never rendered; it does not mark the message read; it
is 404 for another account's message. A 20 MB attachment and its message's source are
streamed from the stored file: what the server allocates while sending either stays far
below their size (tracemalloc over the whole test process, which runs the server), and
the bytes are exact (SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import smtplib
import tracemalloc

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append, imap_login

MIB = 1024 * 1024
HOSTILE = (
    b"From: mallory@other.test\r\nTo: alice@example.test\r\nSubject: look\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
    b"<script>window.pwned=1</script><p>caf\xc3\xa9</p>\r\n"
)


def where(server: RunningServer, uid: int, user: str = "alice@example.test") -> str:
    account = server.call(lambda: server.store.get_account(user))
    inbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    return f"f=INBOX&v={inbox.uidvalidity}&uid={uid}"


def stored(server: RunningServer, uid: int) -> bytes:
    imap = imap_login(server, "alice@example.test")
    try:
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
        assert typ == "OK"
        item = data[0]
        assert isinstance(item, tuple)
        return item[1]
    finally:
        imap.logout()


def test_show_original(server: RunningServer, alice: WebClient) -> None:
    uid = append(server, "alice@example.test", HOSTILE)
    page = alice.get(f"/read?{where(server, uid)}&images=1").text
    link = re.search(r'href="(/read/source\?[^"]+)"[^>]*>Show original<', page)
    assert link
    imap = imap_login(server, "alice@example.test")
    try:
        imap.select("INBOX")
        imap.uid("STORE", str(uid), "-FLAGS", "(\\Seen)")
    finally:
        imap.logout()
    reply = alice.get(link.group(1).replace("&amp;", "&"))
    assert reply.status_code == 200
    assert reply.content == stored(server, uid)
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["x-content-type-options"] == "nosniff"
    csp = reply.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp
    assert '<span class="count" title="unread">1</span>' in alice.get("/folder?f=INBOX").text


def test_source_of_another_account_is_not_found(server: RunningServer, alice: WebClient) -> None:
    bob_uid = append(server, "bob@example.test", b"Subject: secret\r\n\r\nsecret\r\n")
    append(server, "alice@example.test", b"Subject: mine\r\n\r\nmine\r\n")
    url = f"/read/source?{where(server, bob_uid, 'bob@example.test')}"
    reply = alice.get(url)
    assert reply.status_code == 404 and "secret" not in reply.text


def _download_peak(alice: WebClient, url: str) -> tuple[str, int, int]:
    """SHA-256 and length of what `url` answers, and the peak of memory allocated in
    this process (server included) while it was sent."""
    digest, size = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with alice.http.stream("GET", url) as reply:
            assert reply.status_code == 200
            for chunk in reply.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return digest.hexdigest(), size, peak


def test_large_attachment_and_source_stream(server: RunningServer, alice: WebClient) -> None:
    payload = random.Random(14).randbytes(20 * MIB)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    message = (
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: big file\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nthe file\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=big.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.test") as s:
        s.sendmail("bob@example.test", ["alice@example.test"], message)
    folder = alice.get("/folder?f=INBOX").text
    read = re.search(r'href="(/read\?[^"]+)"', folder)
    assert read
    page = alice.get(read.group(1).replace("&amp;", "&")).text
    assert re.search(r"big\.bin</a>\s*<small>20 MB</small>", page)
    attachment = re.search(r'href="(/read/attachment\?[^"]+)"', page)
    source = re.search(r'href="(/read/source\?[^"]+)"', page)
    assert attachment and source

    digest, size, peak = _download_peak(alice, attachment.group(1).replace("&amp;", "&"))
    assert (digest, size) == (hashlib.sha256(payload).hexdigest(), len(payload))
    assert peak < 8 * MIB, peak  # reading it whole held 20 MB decoded + 27 MB encoded

    digest, size, peak = _download_peak(alice, source.group(1).replace("&amp;", "&"))
    whole = stored(server, int(re.findall(r"uid=(\d+)", read.group(1))[0]))
    assert (digest, size) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert peak < 8 * MIB, peak
