"""CATENATE (RFC 4469) over real sockets.

Pins: CATENATE is advertised (§3); the §5 example — a forward built from a draft's
HEADER, TEXT literals, a part's MIME header and body and a whole other message by
relative URL (RFC 5092) — stores exactly those bytes in that order, with the flags given
and ``OK [APPENDUID ...]``; ;PARTIAL= and HEADER.FIELDS sections read as FETCH would;
several CATENATE messages and a plain one in one MULTIAPPEND; a URL that does not parse,
is absolute, names an unknown mailbox, a stale UIDVALIDITY, a missing UID or a missing
part is ``NO [BADURL url]`` and nothing is stored (of a MULTIAPPEND either); a TEXT part
with NUL is NO (not BAD) and the session goes on; REPLACE takes CATENATE parts too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

BOUNDARY = b"------------030308070208000400050907"
DRAFT_HEADER = (
    b"From: alice@example.test\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: Draft with an attachment\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="' + BOUNDARY + b'"\r\n'
    b"\r\n"
)
PART1_MIME = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
PART1_BODY = b"The first part."  # the CRLF before a boundary is the boundary's
PART2_MIME = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
PART2_BODY = b"AAECAwQF"
DRAFT = (
    DRAFT_HEADER
    + b"--"
    + BOUNDARY
    + b"\r\n"
    + PART1_MIME
    + PART1_BODY
    + b"\r\n--"
    + BOUNDARY
    + b"\r\n"
    + PART2_MIME
    + PART2_BODY
    + b"\r\n--"
    + BOUNDARY
    + b"--\r\n"
)
OTHER = b"Subject: another message\r\n\r\nforwarded whole\r\n"


def _literal(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def _uidvalidity(c: RawImap, mailbox: str) -> int:
    line = c.cmd(f"STATUS {mailbox} (UIDVALIDITY)")[0]
    found = re.search(rb"UIDVALIDITY (\d+)", line)
    assert found is not None, line
    return int(found.group(1))


def _messages(c: RawImap, mailbox: str) -> int:
    line = c.cmd(f"STATUS {mailbox} (MESSAGES)")[0]
    found = re.search(rb"MESSAGES (\d+)", line)
    assert found is not None, line
    return int(found.group(1))


def _body(c: RawImap, mailbox: str, uid: int) -> bytes:
    assert status(c.cmd(f"EXAMINE {mailbox}")).startswith(b"OK")
    lines = c.cmd(f"UID FETCH {uid} BODY.PEEK[]")
    assert status(lines).startswith(b"OK"), lines
    found = [line for line in lines if b"BODY[] {" in line]
    assert len(found) == 1, lines
    head, _, rest = found[0].partition(b"}\r\n")
    size = int(head.rsplit(b"{", 1)[1])
    return rest[:size]


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    assert status(c.cmd(b"APPEND Drafts " + _literal(DRAFT))).startswith(b"OK")  # UID 1
    assert status(c.cmd(b"APPEND Drafts " + _literal(OTHER))).startswith(b"OK")  # UID 2
    yield c
    c.close()


def test_catenate_is_advertised(client: RawImap) -> None:
    assert b"CATENATE" in client.cmd("CAPABILITY")[0].split()


def test_forward_built_from_urls_and_text(client: RawImap) -> None:
    # RFC 4469 §5's example, with this server's UIDVALIDITY and UIDs
    v = _uidvalidity(client, "Drafts")
    base = f"/Drafts;UIDVALIDITY={v}/;UID=1".encode()
    intro = b"--" + BOUNDARY + b"\r\n"
    middle = b"\r\n--" + BOUNDARY + b"\r\nContent-Type: message/rfc822\r\n\r\n"
    end = b"\r\n--" + BOUNDARY + b"--\r\n"
    lines = client.cmd(
        b'APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "'
        + base
        + b'/;section=HEADER" TEXT '
        + _literal(intro)
        + b' URL "'
        + base
        + b'/;SECTION=1.MIME" URL "'
        + base
        + b'/;SECTION=1" TEXT '
        + _literal(middle)
        + f' URL "/Drafts;UIDVALIDITY={v}/;UID=2" TEXT '.encode()
        + _literal(end)
        + b")"
    )
    assert status(lines) == b"OK [APPENDUID %d 3] APPEND completed" % v
    expected = DRAFT_HEADER + intro + PART1_MIME + PART1_BODY + middle + OTHER + end
    assert _body(client, "Drafts", 3) == expected
    flags = client.cmd("UID FETCH 3 FLAGS")[0]
    assert b"\\Seen" in flags and b"\\Draft" in flags and b"$MDNSent" in flags


def test_partial_and_header_fields_and_no_uidvalidity(client: RawImap) -> None:
    lines = client.cmd(
        b'APPEND INBOX CATENATE (URL "/Drafts/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)"'
        b' URL "/Drafts/;UID=2/;SECTION=TEXT/;PARTIAL=0.9" TEXT '
        + _literal(b"\r\n")
        + b' URL "/Drafts/;UID=1/;SECTION=2/;PARTIAL=4")'
    )
    assert status(lines).startswith(b"OK [APPENDUID "), lines
    assert _body(client, "INBOX", 1) == (
        b"Subject: Draft with an attachment\r\n\r\n" + b"forwarded" + b"\r\n" + PART2_BODY[4:]
    )


def test_multiappend_of_catenated_and_plain_messages(client: RawImap) -> None:
    v = _uidvalidity(client, "INBOX")
    lines = client.cmd(
        b'APPEND INBOX CATENATE (URL "/Drafts/;UID=2") '
        + _literal(b"Subject: plain\r\n\r\nplain\r\n")
        + b" (\\Flagged) CATENATE (TEXT "
        + _literal(b"Subject: joined\r\n\r\n")
        + b' URL "/Drafts/;UID=1/;SECTION=1")'
    )
    assert status(lines) == b"OK [APPENDUID %d 1:3] APPEND completed" % v
    assert _body(client, "INBOX", 1) == OTHER
    assert _body(client, "INBOX", 2) == b"Subject: plain\r\n\r\nplain\r\n"
    assert _body(client, "INBOX", 3) == b"Subject: joined\r\n\r\n" + PART1_BODY


@pytest.mark.parametrize(
    "url",
    [
        "/Drafts;UIDVALIDITY={stale}/;UID=1",
        "/Drafts/;UID=9",
        "/Drafts/;UID=1/;SECTION=7",
        "/Drafts/;UID=1/;SECTION=1.3",
        "/NoSuchBox/;UID=1",
        "/Drafts/;UID=0",
        "imap://alice@localhost/Drafts/;UID=1",
        "/Drafts/;UID=1/;URLAUTH=anonymous:internal:91354a473744909de610943775f92038",
        "Drafts/;UID=1",
    ],
)
def test_bad_url_is_no_badurl_and_stores_nothing(client: RawImap, url: str) -> None:
    url = url.format(stale=_uidvalidity(client, "Drafts") + 1)
    before = _messages(client, "INBOX")
    lines = client.cmd(
        b'APPEND INBOX CATENATE (URL "/Drafts/;UID=2") '
        + b'CATENATE (TEXT {3+}\r\nabc URL "'
        + url.encode()
        + b'")'
    )
    assert status(lines) == b"NO [BADURL " + url.encode() + b"] Invalid URL in CATENATE"
    assert _messages(client, "INBOX") == before
    assert status(client.cmd("NOOP")).startswith(b"OK")


def test_other_accounts_mailbox_is_not_reachable(server: RunningServer, client: RawImap) -> None:
    bob = RawImap(server.port("imap"))
    try:
        assert status(bob.login("bob@example.test", PASSWORD)).startswith(b"OK")
        assert status(bob.cmd("CREATE Secret")).startswith(b"OK")
        assert status(bob.cmd(b"APPEND Secret " + _literal(OTHER))).startswith(b"OK")
        lines = bob.cmd(b'APPEND INBOX CATENATE (URL "/Secret/;UID=1")')
        assert status(lines).startswith(b"OK [APPENDUID ")  # bob reaches his own
    finally:
        bob.close()
    lines = client.cmd(b'APPEND INBOX CATENATE (URL "/Secret/;UID=1")')
    assert status(lines) == b"NO [BADURL /Secret/;UID=1] Invalid URL in CATENATE"


def test_text_part_with_nul_is_no(client: RawImap) -> None:
    before = _messages(client, "INBOX")
    lines = client.cmd(
        b"APPEND INBOX CATENATE (TEXT " + _literal(b"Subject: x\r\n\r\na\x00b\r\n") + b")"
    )
    assert status(lines).startswith(b"NO "), lines
    assert _messages(client, "INBOX") == before
    assert status(client.cmd("NOOP")).startswith(b"OK")


def test_malformed_catenate_is_bad(client: RawImap) -> None:
    assert status(client.cmd(b"APPEND INBOX CATENATE ()")).startswith(b"BAD")
    assert status(client.cmd(b'APPEND INBOX CATENATE (FILE "/Drafts/;UID=1")')).startswith(b"BAD")
    assert status(client.cmd(b"APPEND INBOX CATENATE (TEXT ~{3+}\r\nabc)")).startswith(b"BAD")


def test_too_large_catenated_message_is_toobig(
    server_factory: Callable[..., RunningServer],
) -> None:
    server = server_factory(imap={"max_literal_size": 64})
    c = RawImap(server.port("imap"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        chunk = b"x" * 40
        lines = c.cmd(
            b"APPEND INBOX CATENATE (TEXT " + _literal(chunk) + b" TEXT " + _literal(chunk) + b")"
        )
        assert status(lines).startswith(b"NO [TOOBIG]"), lines
    finally:
        c.close()


def test_replace_with_catenate(client: RawImap) -> None:
    # A server with both REPLACE and CATENATE takes CATENATE parts in REPLACE (RFC 8508)
    v = _uidvalidity(client, "Drafts")
    assert status(client.cmd("SELECT Drafts")).startswith(b"OK")
    lines = client.cmd(
        b'REPLACE 2 Drafts (\\Draft) CATENATE (URL "/Drafts/;UID=2/;SECTION=HEADER" TEXT '
        + _literal(b"edited\r\n")
        + b")"
    )
    assert status(lines) == b"OK REPLACE completed", lines
    assert b"* OK [APPENDUID %d 3] Replacement Message ID" % v in lines
    assert b"* 2 EXPUNGE" in lines
    assert _body(client, "Drafts", 3) == b"Subject: another message\r\n\r\nedited\r\n"
    assert status(client.cmd("SELECT Drafts")).startswith(b"OK")  # _body EXAMINEs
    lines = client.cmd(b'REPLACE 1 Drafts CATENATE (URL "/Drafts/;UID=2")')
    assert status(lines) == b"NO [BADURL /Drafts/;UID=2] Invalid URL in CATENATE"  # replaced
    assert _messages(client, "Drafts") == 2  # and message 1 stays
