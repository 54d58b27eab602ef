"""FETCH PREVIEW (RFC 8970) over real sockets, from the preview stored at delivery.

Pins: PREVIEW is advertised; FETCH PREVIEW answers the first text of the message with
whitespace collapsed (RFC 8970 §3.1), at most 256 characters; PREVIEW (LAZY) gives the
same answer (nothing is computed late); non-ASCII text comes as UTF-8 in a literal; a
message without text has an empty preview, never NIL; an unknown modifier is BAD; a
real client library (imapclient) reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

TEXT = b"Subject: plans\r\n\r\nHello  Bob,\r\n\r\n\tlunch   at noon?\r\n" + b"word " * 100
UTF8 = (
    b"Subject: caf\xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9 cr\xc3\xa8me \xe2\x80\x94 ok\r\n"
)
EMPTY = b"Subject: nothing\r\n\r\n"


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    for data in (TEXT, UTF8, EMPTY):
        assert status(c.cmd(f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data)).startswith(b"OK")
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    yield c
    c.close()


def test_preview(client: RawImap) -> None:
    assert b"PREVIEW" in client.cmd("CAPABILITY")[0].split()
    line = client.cmd("FETCH 1 (PREVIEW)")[0]
    assert line.startswith(b'* 1 FETCH (PREVIEW "Hello Bob, lunch at noon? word word')
    text = line.split(b'"')[1]
    assert len(text) <= 256
    lazy = client.cmd("FETCH 1 (PREVIEW (LAZY))")[0]
    assert lazy == line


def test_utf8_and_empty(client: RawImap) -> None:
    line = client.cmd("FETCH 2 PREVIEW")[0]
    body = "Café crème — ok".encode()
    assert line == b"* 2 FETCH (PREVIEW {%d}\r\n" % len(body) + body + b")"
    assert client.cmd("UID FETCH 3 (PREVIEW)")[0] == b'* 3 FETCH (UID 3 PREVIEW "")'
    assert status(client.cmd("FETCH 1 (PREVIEW (EAGER))")).startswith(b"BAD")


def test_imapclient_reads_preview(server: RunningServer, client: RawImap) -> None:
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        imap.select_folder("INBOX")
        got = imap.fetch([2], ["PREVIEW"])
        assert got[2][b"PREVIEW"] == "Café crème — ok".encode()
