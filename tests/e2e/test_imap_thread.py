"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256) over real sockets.

Pins, on a mailbox of two conversations: REFERENCES links by References, falls back to
the first In-Reply-To msg-id when there is no References, orders siblings by sent date,
and gathers root messages with the same base subject (two non-replies under a dummy, a
reply then joins the dummy); ORDEREDSUBJECT makes the first message of each base subject
the parent of the others; UID THREAD answers UIDs; the search criteria filter; an
unknown algorithm is BAD and a charset other than US-ASCII/UTF-8 NO [BADCHARSET].
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py


def message(headers: str) -> bytes:
    return (headers.replace("\n", "\r\n") + "\r\nbody\r\n").encode()


MESSAGES = [
    message("Message-ID: <a@x.test>\nSubject: Meeting\nDate: Wed, 1 Jan 2020 10:00:00 +0000\n"),
    message("Message-ID: <b@x.test>\nSubject: Lunch\nDate: Thu, 2 Jan 2020 10:00:00 +0000\n"),
    message(
        "Message-ID: <c@x.test>\nIn-Reply-To: Alice's note <a@x.test>\n"
        "Subject: Re: Meeting\nDate: Fri, 3 Jan 2020 10:00:00 +0000\n"
    ),
    message(
        "Message-ID: <d@x.test>\nReferences: <a@x.test>\n <c@x.test>\n"
        "Subject: Re: Meeting\nDate: Sat, 4 Jan 2020 10:00:00 +0000\n"
    ),
    message(
        "Message-ID: <e@x.test>\nReferences: <a@x.test>\nIn-Reply-To: <d@x.test>\n"
        "Subject: RE: meeting\nDate: Thu, 2 Jan 2020 12:00:00 +0000\n"
    ),
    message("Subject: Lunch\nDate: Sun, 5 Jan 2020 10:00:00 +0000\n"),
    message("Message-ID: <g@x.test>\nSubject: Re: Lunch\nDate: Mon, 6 Jan 2020 10:00:00 +0000\n"),
]


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    """Alice with the messages in INBOX as sequence numbers 1-7, UIDs 2-8."""
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    for data in [b"Subject: gone\r\n\r\n.", *MESSAGES]:
        lines = c.cmd(f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data)
        assert status(lines).startswith(b"OK"), lines
    c.cmd("SELECT INBOX")
    c.cmd("STORE 1 +FLAGS (\\Deleted)")
    assert status(c.cmd("EXPUNGE")).startswith(b"OK")
    yield c
    c.close()


def thread(c: RawImap, command: str) -> bytes:
    lines = c.cmd(command)
    assert status(lines).startswith(b"OK"), lines
    (line,) = [x for x in lines if x.startswith(b"* THREAD")]
    return line


def test_references(client: RawImap) -> None:
    assert thread(client, "THREAD REFERENCES UTF-8 ALL") == b"* THREAD (1 (5)(3 4))((2)(6)(7))"
    assert thread(client, "UID THREAD REFERENCES UTF-8 ALL") == (
        b"* THREAD (2 (6)(4 5))((3)(7)(8))"
    )


def test_ordered_subject(client: RawImap) -> None:
    assert thread(client, "THREAD ORDEREDSUBJECT UTF-8 ALL") == (
        b"* THREAD (1 (5)(3)(4))(2 (6)(7))"
    )


def test_search_criteria_and_errors(client: RawImap) -> None:
    assert thread(client, "THREAD REFERENCES US-ASCII SUBJECT lunch") == b"* THREAD ((2)(6)(7))"
    assert thread(client, "THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing") == b"* THREAD"
    assert status(client.cmd("THREAD REFS UTF-8 ALL")).startswith(b"BAD")
    assert status(client.cmd("THREAD REFERENCES KOI8-R ALL")).startswith(b"NO [BADCHARSET")
    assert status(client.cmd("THREAD REFERENCES ALL")).startswith(b"BAD")


def test_capabilities_and_imapclient(server: RunningServer, client: RawImap) -> None:
    """A real client library's THREAD (imapclient) parses our nesting."""
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        caps = imap.capabilities()
        assert b"THREAD=REFERENCES" in caps and b"THREAD=ORDEREDSUBJECT" in caps
        imap.select_folder("INBOX")
        assert imap.thread("REFERENCES") == ((2, (6,), (4, 5)), ((3,), (7,), (8,)))
