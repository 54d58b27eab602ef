"""REPLACE and UID REPLACE (RFC 8508) over real sockets.

Pins: REPLACE is advertised (§3.1); REPLACE in the selected mailbox answers ``* OK
[APPENDUID v uid]``, the old message's EXPUNGE and the new EXISTS before the tagged OK,
with the flags given (the RFC's §3.3 example), and leaves other \\Deleted messages alone;
UID REPLACE into another mailbox (a draft moving to Sent) expunges the old message here
and adds the new one there; another session sees EXPUNGE and EXISTS; with QRESYNC the old
message is ``* VANISHED uid`` and the tagged OK carries HIGHESTMODSEQ (§3.5); a sequence
number beyond the last message is BAD, an unknown UID NO, a missing target mailbox
``NO [TRYCREATE]`` and a read-only mailbox NO, each leaving the message in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

DRAFT = b"Subject: draft %d\r\n\r\nversion %d\r\n"


def _draft(n: int) -> bytes:
    return DRAFT % (n, n)


def _login(server: RunningServer) -> RawImap:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    assert status(c.cmd("ENABLE IMAP4rev2")).startswith(b"OK")  # no \\Recent to filter out
    return c


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = _login(server)
    for n in (1, 2, 3):
        data = _draft(n)
        assert status(c.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)).startswith(b"OK")
    yield c
    c.close()


def _uidvalidity(c: RawImap, mailbox: str) -> int:
    line = c.cmd(f"STATUS {mailbox} (UIDVALIDITY)")[0]
    found = re.search(rb"UIDVALIDITY (\d+)", line)
    assert found is not None, line
    return int(found.group(1))


def _subjects(c: RawImap) -> list[bytes]:
    lines = c.cmd("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert status(lines).startswith(b"OK")
    return [line for line in lines[:-1] if line.startswith(b"* ")]


def test_replace_in_the_selected_mailbox(server: RunningServer, client: RawImap) -> None:
    assert b"REPLACE" in client.cmd("CAPABILITY")[0].split()
    validity = _uidvalidity(client, "INBOX")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(client.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")).startswith(b"OK")
    other = _login(server)
    try:
        assert status(other.cmd("SELECT INBOX")).startswith(b"OK")
        new = _draft(4)
        lines = client.cmd(b"REPLACE 2 INBOX (\\Seen \\Draft) {%d+}\r\n" % len(new) + new)
        assert lines == [
            b"* OK [APPENDUID %d 4] Replacement Message ID" % validity,
            b"* 2 EXPUNGE",
            b"* 3 EXISTS",
            lines[-1],
        ]
        assert status(lines) == b"OK REPLACE completed"
        fetched = client.cmd("UID FETCH 1:* (FLAGS)")
        assert fetched[:-1] == [
            b"* 1 FETCH (UID 1 FLAGS (\\Deleted))",  # the other \Deleted message stays
            b"* 2 FETCH (UID 3 FLAGS ())",
            b"* 3 FETCH (UID 4 FLAGS (\\Draft \\Seen))",
        ]
        assert client.cmd("UID FETCH 4 BODY.PEEK[]")[0].endswith(b"version 4\r\n)")
        seen = other.cmd("NOOP")
        assert b"* 2 EXPUNGE" in seen and b"* 3 EXISTS" in seen
        assert seen.index(b"* 2 EXPUNGE") < seen.index(b"* 3 EXISTS")
    finally:
        other.close()


def test_uid_replace_into_another_mailbox(client: RawImap) -> None:
    sent_validity = _uidvalidity(client, "Sent")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    new = _draft(5)
    lines = client.cmd(b"UID REPLACE 3 Sent ~{%d+}\r\n" % len(new) + new)  # literal8 too
    assert lines[0] == b"* OK [APPENDUID %d 1] Replacement Message ID" % sent_validity
    assert lines[1:-1] == [b"* 3 EXPUNGE"]
    assert status(lines).startswith(b"OK")
    assert client.cmd("UID SEARCH ALL")[0].endswith(b" UID ALL 1:2")
    assert client.cmd("STATUS Sent (MESSAGES)")[0].endswith(b" (MESSAGES 1)")


def test_replace_with_qresync(client: RawImap) -> None:
    assert status(client.cmd("ENABLE QRESYNC")).startswith(b"OK")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    new = _draft(6)
    lines = client.cmd(b"UID REPLACE * INBOX {%d+}\r\n" % len(new) + new)
    assert lines[0].startswith(b"* OK [APPENDUID ") and lines[0].endswith(
        b" 4] Replacement Message ID"
    )
    assert b"* VANISHED 3" in lines and b"* 3 EXISTS" in lines
    assert not any(line.endswith(b"EXPUNGE") for line in lines)
    found = re.fullmatch(rb"\S+ OK \[HIGHESTMODSEQ (\d+)\] REPLACE completed", lines[-1])
    assert found is not None, lines
    status_line = client.cmd("STATUS INBOX (HIGHESTMODSEQ)")[0]
    assert status_line.endswith(b"HIGHESTMODSEQ %s)" % found.group(1))


def test_replace_errors_leave_the_message(client: RawImap) -> None:
    new = _draft(7)
    literal = b" {%d+}\r\n" % len(new) + new
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(client.cmd(b"REPLACE 9 INBOX" + literal)).startswith(b"BAD")
    assert status(client.cmd(b"UID REPLACE 99 INBOX" + literal)).startswith(b"NO")
    assert status(client.cmd(b"REPLACE 1 Nowhere" + literal)).startswith(b"NO [TRYCREATE]")
    assert status(client.cmd("EXAMINE INBOX")).startswith(b"OK")
    assert status(client.cmd(b"REPLACE 1 INBOX" + literal)).startswith(b"NO")
    assert client.cmd("UID SEARCH ALL")[0].endswith(b" UID ALL 1:3")
    assert status(client.cmd("UNSELECT")).startswith(b"OK")
    # Selected state only (RFC 8508 §3.3).
    assert status(client.cmd(b"REPLACE 1 INBOX" + literal)).startswith(b"BAD")
