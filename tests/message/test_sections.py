"""section_range over nested multiparts and encapsulated messages (RFC 9051 §6.4.5)."""

from __future__ import annotations

import pytest

from pillarbox.message import (
    UnknownTransferEncoding,
    decode_transfer,
    header_fields,
    parse,
    part_encoding,
    section_range,
)

# The example structure of RFC 9051 §6.4.5, built for real: a multipart/mixed with a
# text part, an application part, a message/rfc822 holding a multipart/mixed (whose
# second part is a multipart/alternative), and a multipart/alternative of an image and
# another message/rfc822.
INNER_ALT = (
    b"Content-Type: multipart/alternative; boundary=alt3\r\n"
    b"\r\n"
    b"--alt3\r\nContent-Type: text/plain\r\n\r\n3.2.1 text\r\n"
    b"--alt3\r\nContent-Type: text/richtext\r\n\r\n3.2.2 rich\r\n"
    b"--alt3--\r\n"
)
INNER_MESSAGE = (
    b"Subject: part 3\r\n"
    b"Content-Type: multipart/mixed; boundary=mix3\r\n"
    b"\r\n"
    b"--mix3\r\nContent-Type: text/plain\r\n\r\n3.1 text\r\n"
    b"--mix3\r\n" + INNER_ALT + b"--mix3--\r\n"
)
ATTACHED = b"Subject: part 4.2\r\n\r\n4.2.1 body\r\n"
MESSAGE = (
    b"Subject: RFC 9051 example\r\n"
    b"Content-Type: multipart/mixed; boundary=top\r\n"
    b"\r\n"
    b"--top\r\nContent-Type: text/plain\r\n\r\n1 text\r\n"
    b"--top\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
    b"\r\n\r\nMiBiaW5hcnk=\r\n"
    b"--top\r\nContent-Type: message/rfc822\r\n\r\n" + INNER_MESSAGE + b"\r\n"
    b"--top\r\nContent-Type: multipart/alternative; boundary=alt4\r\n\r\n"
    b"--alt4\r\nContent-Type: image/gif\r\n\r\n4.1 gif\r\n"
    b"--alt4\r\nContent-Type: message/rfc822\r\n\r\n" + ATTACHED + b"\r\n"
    b"--alt4--\r\n"
    b"\r\n--top--\r\n"
)


def _section(data: bytes, part: tuple[int, ...], kind: str = "") -> bytes | None:
    parsed = parse(data)
    found = section_range(parsed.parts, part, kind)
    return None if found is None else data[found[0] : found[1]]


@pytest.mark.parametrize(
    ("part", "kind", "expected"),
    [
        ((), "", MESSAGE),
        ((), "HEADER", MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]),
        ((1,), "", b"1 text"),
        ((1,), "MIME", b"Content-Type: text/plain\r\n\r\n"),
        ((2,), "", b"MiBiaW5hcnk="),
        ((3,), "", INNER_MESSAGE),
        ((3,), "HEADER", INNER_MESSAGE[: INNER_MESSAGE.index(b"\r\n\r\n") + 4]),
        ((3,), "MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ((3, 1), "", b"3.1 text"),
        ((3, 2), "MIME", b"Content-Type: multipart/alternative; boundary=alt3\r\n\r\n"),
        ((3, 2, 1), "", b"3.2.1 text"),
        ((3, 2, 2), "", b"3.2.2 rich"),
        ((4,), "MIME", b"Content-Type: multipart/alternative; boundary=alt4\r\n\r\n"),
        ((4, 1), "", b"4.1 gif"),
        ((4, 2), "", ATTACHED),
        ((4, 2), "HEADER", b"Subject: part 4.2\r\n\r\n"),
        ((4, 2), "TEXT", b"4.2.1 body\r\n"),
        # A non-multipart message's part 1 is its body (RFC 9051 §6.4.5).
        ((4, 2, 1), "", b"4.2.1 body\r\n"),
        ((4, 2, 1), "MIME", b"Subject: part 4.2\r\n\r\n"),
    ],
)
def test_rfc9051_example_sections(part: tuple[int, ...], kind: str, expected: bytes) -> None:
    """Each section of the RFC's example message maps to exactly its bytes."""
    assert _section(MESSAGE, part, kind) == expected


@pytest.mark.parametrize(
    ("part", "kind"),
    [
        ((5,), ""),
        ((0,), ""),
        ((1, 1), ""),
        ((1,), "HEADER"),  # HEADER only applies to message/rfc822 parts
        ((4, 1), "TEXT"),
        ((3, 3), ""),
        ((4, 2, 2), ""),
        ((), "MIME"),
        ((1,), "BOGUS"),
    ],
)
def test_nonexistent_sections(part: tuple[int, ...], kind: str) -> None:
    """Sections that do not exist give None, so the server can answer with NIL/empty."""
    assert _section(MESSAGE, part, kind) is None


def test_single_part_message_part_one_is_body() -> None:
    """In a non-multipart message, BODY[1] is the body and BODY[1.MIME] the header."""
    data = b"Subject: x\r\n\r\nbody\r\n"
    assert _section(data, (1,)) == b"body\r\n"
    assert _section(data, (), "TEXT") == b"body\r\n"
    assert _section(data, (2,)) is None


def test_part_encoding_and_binary() -> None:
    """BINARY[2] decodes the part by its Content-Transfer-Encoding (RFC 3516)."""
    parsed = parse(MESSAGE)
    assert part_encoding(parsed.parts, (2,)) == "base64"
    assert part_encoding(parsed.parts, (1,)) == "7bit"
    assert part_encoding(parsed.parts, (9,)) is None
    start, end = section_range(parsed.parts, (2,), "") or (0, 0)
    assert decode_transfer(MESSAGE[start:end], "base64") == b"2 binary"
    assert decode_transfer(b"a=3Db=\r\nc", "Quoted-Printable") == b"a=bc"
    with pytest.raises(UnknownTransferEncoding):
        decode_transfer(b"begin 644 x", "x-uuencode")


def test_header_fields_keep_folding_and_end_with_blank_line() -> None:
    """HEADER.FIELDS returns original bytes (folding kept) and ends with a blank line."""
    block = b"Subject: a\r\n  folded\r\nFrom: x@y\r\nX-Other: 1\r\nsubject: again\r\n\r\n"
    assert header_fields(block, ["SUBJECT"], False) == (
        b"Subject: a\r\n  folded\r\nsubject: again\r\n\r\n"
    )
    assert header_fields(block, ["subject", "x-other"], True) == b"From: x@y\r\n\r\n"
    assert header_fields(block, ["nope"], False) == b"\r\n"
    assert header_fields(b"A: 1\nB: 2\n\n", ["b"], False) == b"B: 2\n\n"
    assert header_fields(b"A: 1", ["a"], False) == b"A: 1\r\n\r\n"
