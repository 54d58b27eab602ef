"""FETCH and SEARCH details with imapclient: sections, partials, BINARY, macros, ESEARCH,
SEARCHRES, every search key family. FETCH must return exactly the stored bytes."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

PAYLOAD = bytes(range(1, 256))  # no NUL: imaplib cannot read ~{n} literal8
MULTI = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Report\r\n"
    b"Date: Tue, 03 Jan 2023 12:00:00 +0000\r\n"
    b"X-Custom: one\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Quarterly numbers attached, platypus.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") + b"--XX--\r\n"
)
PLAIN = (
    b"From: Carol <carol@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: Lunch\r\n"
    b"Date: Wed, 04 Jan 2023 12:00:00 +0000\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
)


@pytest.fixture
def client(server: RunningServer) -> Iterator[IMAPClient]:
    c = IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30)
    c.login("alice@example.test", PASSWORD)
    c.append("INBOX", MULTI, flags=(b"$Work",), msg_time=datetime.datetime(2023, 1, 3, 12))
    c.append("INBOX", PLAIN)
    c.select_folder("INBOX")
    yield c
    c.logout()


def test_whole_message_and_sections(client: IMAPClient) -> None:
    """BODY[], HEADER, TEXT, part bodies, MIME headers and HEADER.FIELDS come from the
    stored bytes, byte for byte."""
    r = client.fetch([1], ["BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "RFC822.SIZE"])[1]
    assert r[b"BODY[]"] == MULTI
    head, _, text = MULTI.partition(b"\r\n\r\n")
    assert r[b"BODY[HEADER]"] == head + b"\r\n\r\n"
    assert r[b"BODY[TEXT]"] == text
    assert r[b"RFC822.SIZE"] == len(MULTI)
    r = client.fetch(
        [1], ["BODY.PEEK[1]", "BODY.PEEK[2.MIME]", "BODY.PEEK[HEADER.FIELDS (SUBJECT X-CUSTOM)]"]
    )[1]
    assert r[b"BODY[1]"] == b"Quarterly numbers attached, platypus."
    assert r[b"BODY[2.MIME]"].startswith(b"Content-Type: application/octet-stream\r\n")
    fields = r[b"BODY[HEADER.FIELDS (SUBJECT X-CUSTOM)]"]
    assert fields == b"Subject: Report\r\nX-Custom: one\r\n\r\n"
    r = client.fetch([1], ["BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT X-CUSTOM)]"])[1]
    value = r[b"BODY[HEADER.FIELDS.NOT (SUBJECT X-CUSTOM)]"]
    assert b"Subject:" not in value and b"From: Alice" in value


def test_partial_binary_and_macros(client: IMAPClient) -> None:
    """<origin.length> partials, BINARY decoding, BINARY.SIZE and the FAST macro."""
    r = client.fetch([1], ["BODY.PEEK[]<0.4>", "BINARY.PEEK[2]", "BINARY.SIZE[2]"])[1]
    assert r[b"BODY[]<0>"] == MULTI[:4]
    assert r[b"BINARY[2]"] == PAYLOAD
    assert r[b"BINARY.SIZE[2]"] == len(PAYLOAD)
    r = client.fetch([1], ["FAST"])[1]
    assert set(r) >= {b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"}
    assert b"$Work" in r[b"FLAGS"]
    r = client.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "BODY"])
    assert r[1][b"ENVELOPE"].subject == b"Report"
    assert r[2][b"ENVELOPE"].subject == b"Lunch"
    assert r[1][b"BODYSTRUCTURE"].is_multipart


def test_fetch_seen_and_uid(client: IMAPClient) -> None:
    """UID FETCH adds UID; BODY[] sets \\Seen and reports it; PEEK does not."""
    r = client.fetch([2], ["BODY.PEEK[]"])
    assert b"\\Seen" not in client.get_flags([2])[2]
    r = client.fetch([2], ["BODY[]"])
    assert b"\\Seen" in r[2][b"FLAGS"]
    assert b"\\Seen" in client.get_flags([2])[2]


def test_search_keys(client: IMAPClient) -> None:
    """Header, text (full-text), date, size, flag, keyword, sequence and boolean keys."""
    assert client.search(["SUBJECT", "report"]) == [1]
    assert client.search(["FROM", "carol"]) == [2]
    assert client.search(["HEADER", "X-Custom", "one"]) == [1]
    assert client.search(["BODY", "platypus"]) == [1]
    assert client.search(["TEXT", "noon"]) == [2]
    assert client.search(["SENTBEFORE", datetime.date(2023, 1, 4)]) == [1]
    assert client.search(["SENTON", datetime.date(2023, 1, 4)]) == [2]
    assert client.search(["LARGER", 500]) == [1]
    assert client.search(["KEYWORD", "$Work"]) == [1]
    assert client.search(["UNKEYWORD", "$Work"]) == [2]
    assert client.search(["OR", "SUBJECT", "lunch", "SUBJECT", "report"]) == [1, 2]
    assert client.search(["NOT", "SUBJECT", "lunch"]) == [1]
    assert client.search(["2"]) == [2]
    assert client.search(["UNSEEN"]) == [1, 2]
    # This IMAP4rev1 session was the first to select INBOX: both are \Recent (RFC 3501
    # §2.3.2), so NEW (recent and unseen) finds them and OLD none.
    assert client.search(["NEW"]) == [1, 2]
    assert client.search(["OLD"]) == []
    assert client.search(["SUBJECT", "Ünïcode"], charset="UTF-8") == []
    assert client.search(["SINCE", datetime.date(2000, 1, 1)]) == [1, 2]


def test_esearch_and_searchres(client: IMAPClient) -> None:
    """RETURN (MIN MAX COUNT ALL) answers ESEARCH; SAVE keeps the result for "$"."""
    typ, _ = client._imap.uid("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert typ == "OK"
    _, data = client._imap.response("ESEARCH")
    line = data[-1]
    assert b"MIN 1" in line and b"MAX 2" in line and b"COUNT 2" in line and b"ALL 1:2" in line
    typ, _ = client._imap.uid("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "lunch")
    assert typ == "OK"
    typ, data = client._imap.uid("FETCH", "$", "(FLAGS)")
    assert typ == "OK" and b"UID 2" in data[0]
    typ, data = client._imap.search("BOGUS-CHARSET", "ALL")
    assert typ == "NO"


@pytest.mark.parametrize("read_ahead", [1, 1024 * 1024])
def test_batched_reads_match_single_fetches(
    client: IMAPClient, monkeypatch: pytest.MonkeyPatch, read_ahead: int
) -> None:
    """A FETCH of several messages reads their sections ahead in batches (grouped by
    size); whatever the grouping, each message's answer is the same as when it is
    fetched alone, and a FLAGS-only fetch lists every message once."""
    from pillarbox.services import fetching

    monkeypatch.setattr(fetching, "READ_AHEAD", read_ahead)
    items = [
        "BODY.PEEK[]",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
        "BODY.PEEK[TEXT]<2.10>",
        "BODY.PEEK[]<5.20>",
        "BODY.PEEK[1]",
        "RFC822.HEADER",
        "RFC822.SIZE",
    ]
    together = client.fetch([1, 2], items)
    for n in (1, 2):
        assert together[n] == client.fetch([n], items)[n]
    assert together[1][b"BODY[]"] == MULTI and together[2][b"BODY[]"] == PLAIN
    flags = client.fetch([1, 2], ["FLAGS"])
    assert sorted(flags) == [1, 2] and flags[1][b"FLAGS"] == (b"\\Recent", b"$Work")


def test_single_message_whole_file_items(client: IMAPClient) -> None:
    """Fetching one message's whole file (BODY[], a BODY[]<o.n> range, RFC822), which is
    read alongside its row, gives the stored bytes; a range past the end is empty; a UID
    that does not exist gives no response."""
    r = client.fetch([2], ["BODY.PEEK[]", "BODY.PEEK[]<4.9>", "BODY.PEEK[]<99999.5>"])[2]
    assert r[b"BODY[]"] == PLAIN and r[b"BODY[]<4>"] == PLAIN[4:13]
    assert r[b"BODY[]<99999>"] == b""
    assert client.fetch([1], ["RFC822"])[1][b"RFC822"] == MULTI  # imapclient: UID FETCH
    assert client.fetch([1000], ["BODY.PEEK[]"]) == {}
