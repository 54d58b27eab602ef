"""SORT (RFC 5256), ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957) over real sockets.

Pins every sort key on a small mailbox built so each key gives a different order:
ARRIVAL (INTERNALDATE), DATE (Date: in UTC, INTERNALDATE when missing), FROM/TO/CC
(addr-mailbox of the first address, "" when none), DISPLAYFROM/DISPLAYTO (decoded
display name, else the addr-spec), SUBJECT (base subject of RFC 5256 §2.1), SIZE,
REVERSE on one key only, ties kept in mailbox order; UID SORT answers UIDs, SORT
sequence numbers; the search criteria filter; ESORT's MIN/MAX are first/last in sort
order and ALL keeps the sort order; a charset is required and only US-ASCII/UTF-8 are
accepted (NO [BADCHARSET]).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MESSAGES = [
    (
        "01-Jan-2021 00:00:00 +0000",
        b"From: Zed <alpha@x.test>\r\nTo: b@x.test\r\nCc: m@x.test\r\n"
        b"Date: Fri, 3 Jan 2020 00:00:00 +0000\r\nSubject: Re: banana\r\n\r\nshort\r\n",
    ),
    (
        "03-Jan-2021 00:00:00 +0000",
        b"From: Adam <zulu@x.test>\r\nTo: a@x.test\r\n"
        b"Date: Wed, 1 Jan 2020 10:00:00 +0500\r\nSubject: apple\r\n\r\n" + b"x" * 300 + b"\r\n",
    ),
    (
        "31-Dec-2019 00:00:00 +0000",
        b"From: carol@x.test\r\nTo: Aaron <c@x.test>\r\n"
        b"Subject: [list] Fwd: Cherry (fwd)\r\n\r\n" + b"y" * 100 + b"\r\n",
    ),
    (
        "02-Jan-2021 00:00:00 +0000",
        b"From: =?utf-8?q?=C3=89mile?= <bravo@x.test>\r\n"
        b"Date: Wed, 1 Jan 2020 04:00:00 +0000\r\nSubject: APPLE\r\n\r\n" + b"z" * 200 + b"\r\n",
    ),
]


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    """Alice with the four messages in INBOX as sequence numbers 1-4, UIDs 2-5."""
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    first = b"Subject: gone\r\n\r\n."
    c.cmd(f"APPEND INBOX {{{len(first)}+}}\r\n".encode() + first)
    for date, data in MESSAGES:
        lines = c.cmd(f'APPEND INBOX "{date}" {{{len(data)}+}}\r\n'.encode() + data)
        assert status(lines).startswith(b"OK"), lines
    c.cmd("SELECT INBOX")
    c.cmd("STORE 1 +FLAGS (\\Deleted)")
    assert status(c.cmd("EXPUNGE")).startswith(b"OK")
    yield c
    c.close()


def sort(c: RawImap, command: str) -> list[int]:
    lines = c.cmd(command)
    assert status(lines).startswith(b"OK"), lines
    (line,) = [x for x in lines if x.startswith(b"* SORT")]
    return [int(n) for n in line.split()[2:]]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ARRIVAL", [3, 1, 4, 2]),
        ("DATE", [3, 4, 2, 1]),  # 3 has no Date: its INTERNALDATE; 4 is 04:00Z, 2 05:00Z
        ("FROM", [1, 4, 3, 2]),  # alpha bravo carol zulu
        ("DISPLAYFROM", [2, 3, 1, 4]),  # ADAM, CAROL@X.TEST, ZED, ÉMILE
        ("TO", [4, 2, 1, 3]),  # "" a b c
        ("DISPLAYTO", [4, 2, 3, 1]),  # "" A@X.TEST AARON B@X.TEST
        ("CC", [2, 3, 4, 1]),
        ("SUBJECT", [2, 4, 1, 3]),  # APPLE APPLE BANANA CHERRY, ties in mailbox order
        ("REVERSE SUBJECT", [3, 1, 2, 4]),  # REVERSE keeps ties in mailbox order
        ("SUBJECT ARRIVAL", [4, 2, 1, 3]),
        ("SUBJECT REVERSE ARRIVAL", [2, 4, 1, 3]),
        ("SIZE", [1, 3, 4, 2]),
        ("REVERSE SIZE", [2, 4, 3, 1]),
    ],
)
def test_sort_keys(client: RawImap, criteria: str, expected: list[int]) -> None:
    assert sort(client, f"SORT ({criteria}) UTF-8 ALL") == expected


def test_uid_sort_and_search_criteria(client: RawImap) -> None:
    """UID SORT answers UIDs (here sequence number + 1); the criteria filter first."""
    assert sort(client, "UID SORT (DATE) UTF-8 ALL") == [4, 5, 3, 2]
    assert sort(client, "SORT (ARRIVAL) US-ASCII SUBJECT apple") == [4, 2]
    assert sort(client, "SORT (ARRIVAL) UTF-8 SUBJECT nothing-like-this") == []
    assert sort(client, "UID SORT (REVERSE ARRIVAL) UTF-8 UID 2:4 NOT FROM zulu") == [2, 4]


def test_esort(client: RawImap) -> None:
    """RFC 5267 §3.1: MIN and MAX are the first and last in sort order; ALL keeps it."""
    lines = client.cmd("UID SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    assert lines[0] == b'* ESEARCH (TAG "t%d") UID MIN 4 MAX 2 COUNT 4 ALL 4:5,3,2' % client.n
    lines = client.cmd("SORT RETURN () (SUBJECT) UTF-8 ALL")
    assert lines[0] == b'* ESEARCH (TAG "t%d") ALL 2,4,1,3' % client.n
    lines = client.cmd("SORT RETURN (COUNT MIN) (SUBJECT) UTF-8 SUBJECT nope")
    assert lines[0] == b'* ESEARCH (TAG "t%d") COUNT 0' % client.n
    # RFC 5182 §1: SAVE alone keeps the result for "$" and suppresses the ESEARCH.
    lines = client.cmd("SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL")
    assert len(lines) == 1 and status(lines).startswith(b"OK"), lines


def test_charset_and_syntax(client: RawImap) -> None:
    """A charset is required (RFC 5256 §5); others than US-ASCII/UTF-8 are BADCHARSET."""
    assert status(client.cmd("SORT (DATE) KOI8-R ALL")).startswith(b"NO [BADCHARSET")
    assert status(client.cmd("SORT (DATE) ALL")).startswith(b"BAD")
    assert status(client.cmd("SORT (NAME) UTF-8 ALL")).startswith(b"BAD")
    assert status(client.cmd("SORT () UTF-8 ALL")).startswith(b"BAD")


def test_not_without_selected_mailbox(server: RunningServer) -> None:
    c = RawImap(server.port("imap"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        caps = c.cmd("CAPABILITY")[0].split()
        assert {b"SORT", b"SORT=DISPLAY", b"ESORT"} <= set(caps)
        assert status(c.cmd("SORT (DATE) UTF-8 ALL")).startswith(b"BAD")
    finally:
        c.close()


def test_imapclient_sort(server: RunningServer, client: RawImap) -> None:
    """A real client library's SORT (imapclient) gets the RFC order."""
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        imap.select_folder("INBOX")
        assert imap.sort(["REVERSE DATE"], ["ALL"]) == [2, 3, 5, 4]
        assert imap.sort(["FROM"], ["SUBJECT", "apple"]) == [5, 3]
