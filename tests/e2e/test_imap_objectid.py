"""OBJECTID (RFC 8474) over real sockets.

Pins: OBJECTID is advertised; CREATE's tagged OK carries ``[MAILBOXID (id)]`` (§4.1),
SELECT/EXAMINE send the same code and STATUS answers the same id (§4.3); RENAME keeps it
(§4.2) and a deleted mailbox's id is never given to a new one, not even to the newest
mailbox deleted and created again under the same name; FETCH EMAILID gives every
message its own id and COPY and MOVE keep it (§5.1); THREADID is NIL (§5.2); SEARCH
EMAILID finds the copies of one message, an unknown id finds nothing, SEARCH THREADID
finds nothing (no message has one), and an objectid with a character outside
ALPHA / DIGIT / "_" / "-" is BAD (§7).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

ONE = b"Subject: one\r\n\r\nfirst\r\n"
TWO = b"Subject: two\r\n\r\nsecond\r\n"


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    yield c
    c.close()


def _append(c: RawImap, mailbox: str, data: bytes) -> None:
    assert status(c.cmd(f"APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data)).startswith(b"OK")


def _code_id(line: bytes) -> bytes:
    found = re.search(rb"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", line)
    assert found is not None, line
    return found.group(1)


def _status_id(c: RawImap, mailbox: str) -> bytes:
    lines = c.cmd(f"STATUS {mailbox} (MAILBOXID MESSAGES)")
    assert status(lines).startswith(b"OK")
    found = re.fullmatch(
        rb"\* STATUS \S+ \(MAILBOXID \(([A-Za-z0-9_-]+)\) MESSAGES \d+\)", lines[0]
    )
    assert found is not None, lines
    return found.group(1)


def _email_ids(c: RawImap) -> dict[int, bytes]:
    lines = c.cmd("UID FETCH 1:* (EMAILID THREADID)")
    assert status(lines).startswith(b"OK")
    out = {}
    for line in lines[:-1]:
        found = re.fullmatch(
            rb"\* \d+ FETCH \(UID (\d+) EMAILID \(([A-Za-z0-9_-]{1,255})\) THREADID NIL\)", line
        )
        assert found is not None, line
        out[int(found.group(1))] = found.group(2)
    return out


def test_mailboxid_create_select_status_rename(client: RawImap) -> None:
    assert b"OBJECTID" in client.cmd("CAPABILITY")[0].split()
    created = _code_id(client.cmd("CREATE Projects")[-1])
    assert status(client.cmd("CREATE Projects")).startswith(b"NO")
    assert _status_id(client, "Projects") == created
    selected = [line for line in client.cmd("EXAMINE Projects") if b"MAILBOXID" in line]
    assert len(selected) == 1 and selected[0].startswith(b"* OK ")
    assert _code_id(selected[0]) == created
    assert status(client.cmd("CLOSE")).startswith(b"OK")
    assert status(client.cmd("RENAME Projects Archive2026")).startswith(b"OK")
    assert _status_id(client, "Archive2026") == created
    renamed = [line for line in client.cmd("SELECT Archive2026") if b"MAILBOXID" in line]
    assert [_code_id(line) for line in renamed] == [created]
    inbox = _status_id(client, "INBOX")
    assert inbox != created


def test_rename_inbox_keeps_ids(client: RawImap) -> None:
    """RENAME INBOX moves its messages to a new mailbox (RFC 9051 §6.3.6): INBOX keeps its
    MAILBOXID, the new mailbox gets its own, and the messages keep their EMAILIDs."""
    _append(client, "INBOX", ONE)
    inbox = _status_id(client, "INBOX")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    before = _email_ids(client)
    assert status(client.cmd("UNSELECT")).startswith(b"OK")
    assert status(client.cmd("RENAME INBOX Old")).startswith(b"OK")
    assert _status_id(client, "INBOX") == inbox
    assert _status_id(client, "Old") != inbox
    assert status(client.cmd("SELECT Old")).startswith(b"OK")
    assert _email_ids(client) == before


def test_mailboxid_never_reused(client: RawImap) -> None:
    first = _code_id(client.cmd("CREATE Scratch")[-1])
    assert status(client.cmd("DELETE Scratch")).startswith(b"OK")
    # Scratch was the newest mailbox: SQLite alone would give its id out again.
    second = _code_id(client.cmd("CREATE Scratch")[-1])
    assert second != first
    assert status(client.cmd("DELETE Scratch")).startswith(b"OK")
    third = _code_id(client.cmd("CREATE Other")[-1])
    assert third not in (first, second)


def test_emailid_kept_by_copy_and_move(client: RawImap) -> None:
    _append(client, "INBOX", ONE)
    _append(client, "INBOX", TWO)
    assert status(client.cmd("CREATE Kept")).startswith(b"OK")
    assert status(client.cmd("CREATE Moved")).startswith(b"OK")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    inbox = _email_ids(client)
    assert sorted(inbox) == [1, 2] and inbox[1] != inbox[2]
    assert status(client.cmd("UID COPY 1 Kept")).startswith(b"OK")
    assert status(client.cmd("UID MOVE 1:2 Moved")).startswith(b"OK")
    assert status(client.cmd("SELECT Kept")).startswith(b"OK")
    assert _email_ids(client) == {1: inbox[1]}
    assert status(client.cmd("SELECT Moved")).startswith(b"OK")
    assert _email_ids(client) == {1: inbox[1], 2: inbox[2]}

    lines = client.cmd(b"UID SEARCH EMAILID " + inbox[2])
    assert lines[0] == b"* SEARCH 2" and status(lines).startswith(b"OK")
    lines = client.cmd(b"SEARCH OR EMAILID " + inbox[1] + b" EMAILID " + inbox[2])
    assert lines[0] == b"* SEARCH 1 2"
    assert client.cmd("SEARCH EMAILID M0000000000000000")[0] == b"* SEARCH"
    assert client.cmd("SEARCH EMAILID unknown_id-1")[0] == b"* SEARCH"
    assert client.cmd("SEARCH THREADID T1")[0] == b"* SEARCH"
    assert status(client.cmd("SEARCH EMAILID M+1")).startswith(b"BAD")


def test_imapclient_reads_ids(server: RunningServer, client: RawImap) -> None:
    _append(client, "INBOX", ONE)
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    expected = _email_ids(client)[1]
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        assert b"OBJECTID" in imap.capabilities()
        imap.select_folder("INBOX")
        got = imap.fetch([1], ["EMAILID", "THREADID"])
        assert got[1][b"EMAILID"] == (expected,)
        assert got[1][b"THREADID"] is None
        assert imap.search(["EMAILID", expected.decode()]) == [1]
