"""The helpers other packages call directly: header access, addresses, text, parse flags."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pillarbox.message import (
    Address,
    MalformedMessage,
    addresses,
    get_header,
    header_end,
    parse,
    parse_address_list,
    section_range,
)
from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.text import TEXT_CAP, html_to_text
from pillarbox.message.transfer import decode_transfer


def test_get_header_first_occurrence_unfolded_raw() -> None:
    """get_header returns the first field, unfolded, encoded-words untouched."""
    data = b"Subject: =?utf-8?q?a?=\r\n  b\r\nsubject: second\r\nX: 1\r\n\r\nSubject: body\r\n"
    assert get_header(data, "SUBJECT") == "=?utf-8?q?a?=  b"
    assert get_header(data, "x") == "1"
    assert get_header(data, "missing") is None
    assert get_header("To: ü@x\n\n", "to") == "ü@x"


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"A: 1\r\n\r\nbody", 8),
        (b"A: 1\n\nbody", 6),
        (b"\r\nbody", 2),
        (b"A: 1", 4),
        (b"", 0),
        (b"A: 1\r\nnot a header line\r\n", 6),
    ],
)
def test_header_end(data: bytes, offset: int) -> None:
    """The body starts after the blank line, or at the first non-field line."""
    assert header_end(data) == offset


def test_addresses_for_submission() -> None:
    """(decoded name, address) pairs; groups flattened, their names dropped."""
    value = '=?utf-8?q?J=C3=B6?= <jo@x.test>, "Doe, J" <j@y>, team: a@b, c@d;, solo'
    assert addresses(value) == [
        ("Jö", "jo@x.test"),
        ("Doe, J", "j@y"),
        ("", "a@b"),
        ("", "c@d"),
        ("", "solo"),
    ]
    assert addresses(b"undisclosed-recipients:;") == []
    assert addresses("Zoë <zoë@example.com>") == [("Zoë", "zoë@example.com")]


def test_parse_address_list_markers() -> None:
    """Group start/end markers follow RFC 9051 §7.5.2; an open group is closed."""
    assert parse_address_list("g: a@b") == [
        Address(None, None, "g", None),
        Address(None, None, "a", "b"),
        Address(None, None, None, None),
    ]
    assert parse_address_list("") == []
    assert parse_address_list(",,,") == []


def test_decode_header_value_joins_adjacent_words() -> None:
    """RFC 2047 §6.2: whitespace between encoded-words vanishes; a split char survives."""
    # "é" is C3 A9, split across two words.
    assert decode_header_value(b"=?utf-8?q?caf=C3?= =?utf-8?q?=A9?= ok") == "café ok"
    assert decode_header_value(b"=?bogus?q?x?=") == "x"
    assert decode_header_value(b"=?utf-8?b?!!!?=") == ""
    assert decode_header_value(b"caf\xe9") == "café"


def test_html_to_text_is_linear_on_hostile_markup() -> None:
    """Unclosed comments and endless '<' do not make tag stripping quadratic."""
    assert html_to_text("<p>a &amp; b</p><!-- x") == "a & b"
    hostile = "<" * 200_000 + "<!--" * 50_000 + "<script>" * 10_000
    started = time.perf_counter()
    html_to_text(hostile)
    assert time.perf_counter() - started < 2.0


def test_body_text_is_capped() -> None:
    """Huge text bodies are cut at TEXT_CAP characters."""
    data = b"Content-Type: text/plain\r\n\r\n" + b"word " * (TEXT_CAP // 2)
    parsed = parse(data)
    assert len(parsed.body_text) <= TEXT_CAP
    assert parsed.preview == ("word " * 40).strip()


def test_sent_date_defaults_to_utc_and_bad_dates_are_none() -> None:
    """-0000 means no zone information: taken as UTC; nonsense gives None."""
    parsed = parse(b"Date: Mon, 7 Feb 1994 21:52:25 -0000\r\n\r\n")
    assert parsed.sent_date == datetime(1994, 2, 7, 21, 52, 25, tzinfo=UTC)
    assert parse(b"Date: yesterday-ish\r\n\r\n").sent_date is None
    assert parse(b"Date: Mon, 99 Feb 99999 99:99:99 +9999\r\n\r\n").sent_date is None


def test_internal_messages_must_be_well_formed() -> None:
    """internal=True turns a repair into MalformedMessage (our composer has a bug)."""
    broken = b"Content-Type: multipart/mixed\r\n\r\nx"
    assert parse(broken).bodystructure.startswith(b'("text" "plain"')
    with pytest.raises(MalformedMessage):
        parse(broken, internal=True)
    parse(b"Subject: fine\r\n\r\nok\r\n", internal=True)


def test_huge_attachment_is_fast() -> None:
    """A 20 MB base64 attachment costs little: bodies are found, not decoded."""
    line = b"QUJD" * 19 + b"\r\n"
    attachment = line * (20_000_000 // len(line))
    data = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n"
        b"\r\nhi\r\n--x\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\n" + attachment + b"--x--\r\n"
    )
    started = time.perf_counter()
    parsed = parse(data)
    assert time.perf_counter() - started < 2.0
    start, end = section_range(parsed.parts, (2,), "") or (0, 0)
    assert end - start == len(attachment) - 2  # the last CRLF belongs to the delimiter
    assert parsed.body_text == "hi"


def test_deep_nesting_stops_descending() -> None:
    """Past the nesting cap a container is opaque; nothing recurses without bound."""
    data = b""
    for depth in range(200):
        data = b"Content-Type: message/rfc822\r\n\r\nSubject: %d\r\n" % depth + data
    parsed = parse(data)
    assert b'"application" "octet-stream"' in parsed.bodystructure


def test_group_of_only_a_comment_has_no_member() -> None:
    """RFC 5322 §3.4: a group-list may be CFWS alone; a comment is no mailbox, so the
    group is its two markers (RFC 9051 §7.5.2), never a MISSING_MAILBOX address."""
    assert parse_address_list("group2: (foo) ;") == [
        Address(None, None, "group2", None),
        Address(None, None, None, None),
    ]
    assert parse_address_list("(just a comment), a@b") == [Address(None, None, "a", "b")]


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"soft=  \r\nbreak", b"softbreak"),  # RFC 2045 §6.7 rule 5, with rule 3
        (b"trailing  \r\nspaces\t \r\n", b"trailing\r\nspaces\r\n"),  # rule 3
        (b"last line  ", b"last line"),
        (b"=41 =42", b"A B"),  # inner spaces stay
        (b"=ZZ stays", b"=ZZ stays"),  # malformed: passed through
    ],
)
def test_quoted_printable_drops_trailing_whitespace(encoded: bytes, decoded: bytes) -> None:
    assert decode_transfer(encoded, "quoted-printable") == decoded
