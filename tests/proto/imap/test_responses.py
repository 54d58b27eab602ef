"""The exact bytes of server responses (RFC 9051 §7) and the string encodings."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import responses as r
from pillarbox.proto.imap.grammar.reader import Reader


def test_status_responses() -> None:
    assert (
        r.ok("a1", "SELECT completed", "READ-WRITE") == b"a1 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert r.no("a", "nope", "TRYCREATE") == b"a NO [TRYCREATE] nope\r\n"
    assert r.bad("a", "bad\r\nx") == b"a BAD bad  x\r\n"  # CR/LF never leak into a line
    assert r.untagged_ok("UIDs valid", "UIDVALIDITY 3857529045") == (
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    )
    assert r.bye() == b"* BYE Logging out\r\n"
    assert r.continuation() == b"+ Ready\r\n"


def test_untagged_data() -> None:
    assert r.exists(172) == b"* 172 EXISTS\r\n"
    assert r.recent(1) == b"* 1 RECENT\r\n"
    assert r.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert r.vanished([41, 43, 44, 45], earlier=True) == b"* VANISHED (EARLIER) 41,43:45\r\n"
    assert r.flags(["\\Seen", "$Junk"]) == b"* FLAGS (\\Seen $Junk)\r\n"
    assert r.capability(["IMAP4rev2", "IDLE"]) == b"* CAPABILITY IMAP4rev2 IDLE\r\n"
    assert r.enabled([]) == b"* ENABLED\r\n"
    assert r.enabled(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"
    assert r.list_response(["\\HasNoChildren"], "/", "INBOX") == (
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    )
    assert (
        r.list_response([], None, "Entwürfe", utf8=True) == '* LIST () NIL "Entwürfe"\r\n'.encode()
    )
    assert r.list_response([], "/", "Entwürfe") == b'* LIST () "/" Entw&APw-rfe\r\n'
    assert (
        r.list_response(
            ["\\Subscribed"], "/", "a b", extended=[b'("CHILDINFO" ("SUBSCRIBED"))'], command="LSUB"
        )
        == b'* LSUB (\\Subscribed) "/" "a b" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    assert r.status("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]) == (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    )
    assert r.search([2, 84, 882]) == b"* SEARCH 2 84 882\r\n"
    assert r.search([], modseq=None) == b"* SEARCH\r\n"
    assert r.search([1], modseq=917162500) == b"* SEARCH 1 (MODSEQ 917162500)\r\n"
    assert r.esearch("A282", uid=True, minimum=2, maximum=47, all_=[2, 3, 4, 10], count=5) == (
        b'* ESEARCH (TAG "A282") UID MIN 2 MAX 47 ALL 2:4,10 COUNT 5\r\n'
    )
    assert r.esearch(None, count=0) == b"* ESEARCH COUNT 0\r\n"
    assert r.id_response(None) == b"* ID NIL\r\n"
    assert (
        r.id_response({"name": "Pillarbox", "os": None})
        == b'* ID ("name" "Pillarbox" "os" NIL)\r\n'
    )
    assert r.namespace([("", "/")], None, [("#shared/", "/")]) == (
        b'* NAMESPACE (("" "/")) NIL (("#shared/" "/"))\r\n'
    )


def test_fetch_items() -> None:
    dt = datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-7))
    )
    body = c.FetchBody((1, 2), "HEADER.FIELDS", ("From", "X Y"), c.Partial(0, 10), peek=True)
    assert r.fetch(
        12,
        [
            r.fetch_uid(4827313),
            r.fetch_flags(["\\Seen"]),
            r.fetch_internaldate(dt),
            r.fetch_size(44827),
            r.fetch_modseq(12121231000),
            r.fetch_envelope(b"(NIL)"),
            r.fetch_bodystructure(b"(x)", extensible=False),
            r.fetch_section(body, b"From: a\r\n"),
            r.fetch_section(c.FetchBody(binary=True), b"\x00"),
            r.fetch_section(c.FetchBody((3,), "MIME"), None),
            r.fetch_binary_size(c.FetchBinarySize((1,)), 7),
            r.fetch_literal_item("RFC822.HEADER", b"A: b\r\n\r\n"),
        ],
    ) == (
        b"* 12 FETCH (UID 4827313 FLAGS (\\Seen) "
        b'INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 44827 MODSEQ (12121231000) '
        b"ENVELOPE (NIL) BODY (x) "
        b'BODY[1.2.HEADER.FIELDS (From "X Y")]<0> {9}\r\nFrom: a\r\n '
        b"BINARY[] ~{1}\r\n\x00 BODY[3.MIME] NIL BINARY.SIZE[1] 7 "
        b"RFC822.HEADER {8}\r\nA: b\r\n\r\n)\r\n"
    )
    assert r.date_time(datetime.datetime(2024, 1, 5, 3, 4, 5)) == b'"05-Jan-2024 03:04:05 +0000"'


def test_string_forms() -> None:
    assert r.astring("INBOX") == b"INBOX"
    assert r.astring("nil") == b'"nil"'
    assert r.astring("") == b'""'
    assert r.astring('a"b\\') == b'"a\\"b\\\\"'
    assert r.string("é") == b"{2}\r\n\xc3\xa9"
    assert r.string("é", utf8=True) == '"é"'.encode()
    assert r.string(b"\xff", utf8=True) == b"{1}\r\n\xff"
    assert r.string("x" * 2000).startswith(b"{2000}\r\n")
    assert r.nstring(None) == b"NIL"
    assert r.sequence_set([5, 1, 2, 3, 9]) == b"1:3,5,9"


@given(st.binary(max_size=60).map(lambda b: b.replace(b"\x00", b"")), st.booleans())
def test_string_encoding_parses_back(value: bytes, utf8: bool) -> None:
    """Whatever form `astring` picks, the parser reads the same bytes back."""
    reader = Reader(r.astring(value, utf8=utf8), utf8=utf8, max_depth=4)
    assert reader.astring() == value
    assert reader.at_end()
