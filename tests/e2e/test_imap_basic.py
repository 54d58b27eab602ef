"""IMAP end to end with the standard library's imaplib: login, select, append, fetch,
store, search, expunge, copy, move on a real server over real sockets."""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MSG = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: Hello there\r\n"
    b"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.test>\r\n"
    b"\r\n"
    b"The quick brown fox jumps over the lazy dog.\r\n"
)


def message(n: int, subject: str = "Hello there") -> bytes:
    return MSG.replace(b"Hello there", f"{subject} {n}".encode()).replace(
        b"<m1@", f"<m{n}@".encode()
    )


@pytest.fixture
def imap(server: RunningServer) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    client.login("alice@example.test", PASSWORD)
    yield client
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        client.logout()


def test_login_select_append_fetch(imap: imaplib.IMAP4) -> None:
    """APPEND stores the exact bytes and FETCH BODY[] returns them, with APPENDUID."""
    typ, data = imap.append("INBOX", r"(\Flagged)", None, MSG)
    assert typ == "OK"
    assert b"APPENDUID" in data[0]
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = imap.fetch("1", "(FLAGS BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == MSG
    assert b"\\Flagged" in data[0][0]
    typ, data = imap.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]


def test_body_fetch_sets_seen(imap: imaplib.IMAP4) -> None:
    """BODY[] (not PEEK) sets \\Seen and the FETCH response reports the new flags."""
    imap.append("INBOX", None, None, MSG)
    imap.select("INBOX")
    typ, data = imap.fetch("1", "(BODY[TEXT])")
    assert typ == "OK"
    assert data[0][1] == b"The quick brown fox jumps over the lazy dog.\r\n"
    flat = b" ".join(x if isinstance(x, bytes) else b" ".join(x) for x in data)
    assert b"\\Seen" in flat
    typ, data = imap.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]


def test_store_search_expunge(imap: imaplib.IMAP4) -> None:
    """STORE +FLAGS, SEARCH by flag and text, EXPUNGE with correct sequence numbers."""
    for i in range(1, 6):
        imap.append("INBOX", None, None, message(i, "Topic"))
    imap.select("INBOX")
    typ, data = imap.store("2,4", "+FLAGS", r"(\Deleted)")
    assert typ == "OK"
    typ, data = imap.search(None, "DELETED")
    assert data == [b"2 4"]
    typ, data = imap.search(None, "SUBJECT", '"Topic 3"')
    assert data == [b"3"]
    typ, data = imap.expunge()
    assert typ == "OK"
    assert data == [b"4", b"2"]
    typ, data = imap.search(None, "ALL")
    assert data == [b"1 2 3"]
    typ, data = imap.uid("SEARCH", None, "ALL")
    assert data == [b"1 3 5"]


def test_copy_move_and_mailboxes(imap: imaplib.IMAP4) -> None:
    """CREATE, COPY (COPYUID), MOVE (EXPUNGE sent), LIST, STATUS, DELETE."""
    imap.append("INBOX", None, None, message(1))
    imap.append("INBOX", None, None, message(2))
    assert imap.create("Work/Projects")[0] == "OK"
    typ, data = imap.list()
    names = b"\n".join(data)
    assert b'"Work/Projects"' in names and b'"Work"' in names
    imap.select("INBOX")
    typ, data = imap.copy("1", "Work/Projects")
    assert typ == "OK"
    typ, data = imap.uid("MOVE", "2", "Work")
    assert typ == "OK"
    typ, data = imap.status("Work/Projects", "(MESSAGES UIDNEXT)")
    assert b"MESSAGES 1" in data[0]
    typ, data = imap.copy("1", "Nope")
    assert typ == "NO"
    assert imap.select("Work")[1] == [b"1"]
    imap.close()
    assert imap.delete("Work/Projects")[0] == "OK"


def test_implicit_tls_listener(server: RunningServer) -> None:
    """The "imaps" listener speaks IMAP inside TLS from the first byte."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=ctx, timeout=30)
    try:
        _, caps = client.capability()
        assert b"STARTTLS" not in caps[0] and b"AUTH=PLAIN" in caps[0]
        assert client.login("bob@example.test", PASSWORD)[0] == "OK"
    finally:
        client.logout()
