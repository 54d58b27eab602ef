"""CATENATE grammar (RFC 4469 §5) and the relative IMAP URLs it takes (RFC 5092).

Pins: cat-parts are kept in order, TEXT literals as sent (NUL too, for a NO later);
CATENATE is one message of a MULTIAPPEND; an empty part list, an unknown part or a
literal8 TEXT are parse errors; URLs decode their mailbox (percent-encoded UTF-8), the
optional UIDVALIDITY, a section as in FETCH (case-insensitive ";section=") and PARTIAL;
anything but a relative message URL is BadUrl.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.imapurl import BadUrl, MessageUrl, parse_message_url
from pillarbox.proto.imap.parser import ParseError, parse_command


def test_parts_in_order_with_multiappend() -> None:
    cmd = parse_command(
        b'A1 APPEND Drafts (\\Seen) CATENATE (URL "/Drafts/;UID=20/;section=HEADER"'
        b" TEXT {3}\r\na\x00b) {2}\r\nhi CATENATE (URL /INBOX/;UID=1)"
    )
    assert isinstance(cmd, c.Append)
    first, plain, third = cmd.messages
    assert first.flags == ("\\Seen",)
    assert first.catenate == (c.CatUrl("/Drafts/;UID=20/;section=HEADER"), c.CatText(b"a\x00b"))
    assert plain.catenate is None and plain.data == b"hi"
    assert third.catenate == (c.CatUrl("/INBOX/;UID=1"),)


@pytest.mark.parametrize(
    "line",
    [
        b"A1 APPEND INBOX CATENATE ()",
        b'A1 APPEND INBOX CATENATE (FILE "x")',
        b"A1 APPEND INBOX CATENATE (TEXT ~{1}\r\nx)",
        b'A1 APPEND INBOX CATENATE URL "/INBOX/;UID=1"',
    ],
)
def test_malformed(line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(line)


def test_url_fields() -> None:
    url = (
        "/Caf%C3%A9%20Box;UIDVALIDITY=385759045/;UID=20"
        "/;SECTION=1.2.HEADER.FIELDS%20(To%20From)/;PARTIAL=5.10"
    )
    assert parse_message_url(url) == MessageUrl(
        "Café Box", 385759045, 20, (1, 2), "HEADER.FIELDS", ("To", "From"), (5, 10)
    )
    assert parse_message_url("/INBOX/;uid=3/;section=text/;partial=7") == MessageUrl(
        "INBOX", None, 3, (), "TEXT", (), (7, None)
    )


@pytest.mark.parametrize(
    "url",
    [
        "imap://alice@host/INBOX/;UID=1",
        "INBOX/;UID=1",
        "/INBOX/;UID=0",
        "/INBOX/;UID=01",
        "/INBOX/;UID=1/;SECTION=MIME",
        "/INBOX/;UID=1/;SECTION=1.BOGUS",
        "/INBOX/;UID=1/;PARTIAL=1.0",
        "/INBOX/;UID=1/;URLAUTH=anonymous:internal:00",
        "/IN%ZZBOX/;UID=1",
        "/%FF/;UID=1",
        "/INBOX?SUBJECT%20x",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(BadUrl):
        parse_message_url(url)
