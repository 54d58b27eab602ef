"""SAVEDATE (RFC 8514) over real sockets.

Pins: SAVEDATE is advertised (§4.1); FETCH SAVEDATE answers when the message was saved
in this mailbox, as a date-time string, even when APPEND gave it an old internal date
(§3, §4.2, the RFC's example); COPY and MOVE save the new message now while INTERNALDATE
is kept; SAVEDBEFORE / SAVEDON / SAVEDSINCE compare the save date's day, not the
internal date's (§4.3), SAVEDATESUPPORTED matches every message (every mailbox keeps
save dates), and a real client library (imapclient) reads the item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

MESSAGE = b"Subject: old news\r\n\r\nsaved today, written long ago\r\n"
OLD = "01-Jan-2015 18:50:53 +0100"
DATE_TIME = re.compile(rb'"(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"')


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    appended = c.cmd(f'APPEND INBOX "{OLD}" {{{len(MESSAGE)}+}}\r\n'.encode() + MESSAGE)
    assert status(appended).startswith(b"OK")
    yield c
    c.close()


def _date_time(text: bytes) -> datetime:
    return datetime.strptime(text.decode(), "%d-%b-%Y %H:%M:%S %z")


def _saved(c: RawImap, uid: int) -> datetime:
    lines = c.cmd(f"UID FETCH {uid} (INTERNALDATE SAVEDATE)")
    assert status(lines).startswith(b"OK")
    found = re.fullmatch(
        rb"\* \d+ FETCH \(UID \d+ INTERNALDATE "
        + DATE_TIME.pattern
        + rb" SAVEDATE "
        + DATE_TIME.pattern
        + rb"\)",
        lines[0],
    )
    assert found is not None, lines
    assert found.group(1).decode() == OLD  # COPY and MOVE keep the internal date
    return _date_time(found.group(2))


def test_fetch_and_search_savedate(client: RawImap) -> None:
    assert b"SAVEDATE" in client.cmd("CAPABILITY")[0].split()
    before = datetime.now().astimezone()
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    saved = _saved(client, 1)
    assert abs(saved - before) < timedelta(minutes=5)
    day = saved.strftime("%d-%b-%Y")
    assert client.cmd(f"SEARCH SAVEDON {day}")[0] == b"* SEARCH 1"
    assert client.cmd(f"SEARCH SAVEDSINCE {day}")[0] == b"* SEARCH 1"
    assert client.cmd(f"SEARCH SAVEDBEFORE {day}")[0] == b"* SEARCH"
    assert client.cmd(f"SEARCH ON {day}")[0] == b"* SEARCH"  # the internal date is 2015
    assert client.cmd("SEARCH SAVEDBEFORE 2-Jan-2015")[0] == b"* SEARCH"
    assert client.cmd("SEARCH BEFORE 2-Jan-2015")[0] == b"* SEARCH 1"
    assert client.cmd("SEARCH SAVEDATESUPPORTED")[0] == b"* SEARCH 1"
    assert client.cmd("SEARCH NOT SAVEDATESUPPORTED")[0] == b"* SEARCH"
    assert status(client.cmd("SEARCH SAVEDON yesterday")).startswith(b"BAD")


def test_copy_and_move_are_saved_now(client: RawImap) -> None:
    assert status(client.cmd("CREATE Copies")).startswith(b"OK")
    assert status(client.cmd("CREATE Moved")).startswith(b"OK")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    first = _saved(client, 1)
    assert status(client.cmd("UID COPY 1 Copies")).startswith(b"OK")
    assert status(client.cmd("UID MOVE 1 Moved")).startswith(b"OK")
    for mailbox in ("Copies", "Moved"):
        assert status(client.cmd(f"SELECT {mailbox}")).startswith(b"OK")
        assert _saved(client, 1) >= first
        day = _saved(client, 1).strftime("%d-%b-%Y")
        assert client.cmd(f"UID SEARCH SAVEDON {day}")[0] == b"* SEARCH 1"


def test_imapclient_reads_savedate(server: RunningServer, client: RawImap) -> None:
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        assert b"SAVEDATE" in imap.capabilities()
        imap.select_folder("INBOX")
        got = imap.fetch([1], ["SAVEDATE"])[1][b"SAVEDATE"]
        assert DATE_TIME.fullmatch(b'"' + got + b'"'), got
