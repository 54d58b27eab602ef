"""A streamed FETCH answer is byte for byte the answer read into memory (issue 16).

Sections of `fetching.STREAM_MIN` bytes or more that are byte ranges of the stored
message, or BINARY[] of base64 / quoted-printable parts, are streamed from the blob;
here STREAM_MIN is lowered to 1 (and the chunk size to 7 bytes, so every literal and
every encoded line crosses chunk boundaries) and every FETCH item that reads the message
must answer exactly as with the defaults, where nothing this small streams: the whole
message, TEXT, parts, partial ranges, RFC822*, BINARY of 8bit, base64 and
quoted-printable parts, whole and partial, and BINARY.SIZE. BINARY[] is a literal8 only
when its data holds a NUL (RFC 3516 §4.3); NUL outside BINARY[] goes as 0x80 in both
paths (`wire.literal`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from pillarbox.services import fetch_stream, fetching
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

PART2 = b"eight\x00bit \xe9\xff with a NUL"
MESSAGE = (
    b"From: a@example.test\r\n"
    b"Subject: streamed\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n'
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Plain seven-bit text of the first part.\r\n"
    b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + PART2 + b"\r\n"
    b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(bytes(range(1, 200))).replace(b"\n", b"\r\n") + b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(bytes(range(256)) * 3).replace(b"\n", b"\r\n") + b"--B\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=E9 au lait, soft =\r\nbreak and trailing blanks   \r\n"
    b"a NUL =00 and an escape at the end =3D\r\n"
    b"--B--\r\n"
)
PLAIN = b"From: b@example.test\r\nSubject: short\r\n\r\nA short body.\r\n"

ITEMS = [
    "BODY.PEEK[]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
    "BODY.PEEK[1]",
    "BODY.PEEK[2]",
    "BODY.PEEK[2.MIME]",
    "BODY.PEEK[2]<3.5>",
    "BODY.PEEK[TEXT]<2.10>",
    "BODY.PEEK[]<5.20>",
    "BODY.PEEK[]<99999.5>",
    "BINARY.PEEK[1]",
    "BINARY.PEEK[2]",
    "BINARY.PEEK[2]<1.4>",
    "BINARY.PEEK[3]",
    "BINARY.SIZE[2]",
    "BINARY.SIZE[3]",
    "BINARY.PEEK[3]<5.10>",
    "BINARY.PEEK[3]<500.10>",
    "BINARY.PEEK[4]",
    "BINARY.SIZE[4]",
    "BINARY.PEEK[4]<1.300>",
    "BINARY.PEEK[5]",
    "BINARY.SIZE[5]",
    "BINARY.PEEK[5]<3.7>",
    "BINARY.PEEK[]",
    "RFC822",
    "RFC822.TEXT",
    "RFC822.HEADER",
    "RFC822.SIZE",
]


@pytest.fixture
def imap(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        for data in (MESSAGE, PLAIN):
            # literal8 (RFC 3516 §4.4): the message holds a NUL
            lines = c.cmd(f"APPEND INBOX ~{{{len(data)}+}}\r\n".encode() + data)
            assert status(lines).startswith(b"OK"), lines
        assert status(c.cmd("EXAMINE INBOX")).startswith(b"OK")
        yield c
    finally:
        c.close()


def answers(c: RawImap) -> list[list[bytes]]:
    """Each item alone for both messages, all items at once, and BODY[] alone (the
    whole-message read path)."""
    out = [c.cmd(f"FETCH 1:2 ({item})") for item in ITEMS]
    out.append(c.cmd(f"FETCH 1:2 ({' '.join(ITEMS)})"))
    out.append(c.cmd("FETCH 1:2 BODY.PEEK[]"))
    return out


def test_streamed_answers_equal_read_answers(
    imap: RawImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = answers(imap)
    assert all(status(lines).startswith(b"OK") for lines in read), read
    monkeypatch.setattr(fetching, "STREAM_MIN", 1)
    monkeypatch.setattr(fetch_stream, "STREAM_CHUNK", 7)
    streamed = answers(imap)
    for item, want, got in zip([*ITEMS, "all", "BODY[]"], read, streamed, strict=True):
        assert got[:-1] == want[:-1] and status(got) == status(want), item
    whole = streamed[ITEMS.index("BODY.PEEK[]")][0]
    assert whole.endswith(MESSAGE.replace(b"\x00", b"\x80") + b")")  # NUL as 0x80
    binary = streamed[ITEMS.index("BINARY.PEEK[2]")][0]
    assert binary.endswith(b"BINARY[2] ~{%d}\r\n%s)" % (len(PART2), PART2))
    assert b"BINARY[1] {" in streamed[ITEMS.index("BINARY.PEEK[1]")][0]  # no NUL: <string>
    assert b"BINARY[4] ~{768}\r\n" in streamed[ITEMS.index("BINARY.PEEK[4]")][0]  # decoded NUL


def test_many_small_ranges_stream_together(imap: RawImap, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges each below STREAM_MIN that add up past it are streamed all the same (one
    command line can name thousands of them), with the same answer."""
    ranges = " ".join(f"BODY.PEEK[]<{origin}.50>" for origin in range(0, 1000, 50))
    command = f"FETCH 1 ({ranges} BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    read = imap.cmd(command)
    assert status(read).startswith(b"OK") and read[0].count(b"{50}") == 20, read
    monkeypatch.setattr(fetching, "STREAM_MIN", 600)  # each range 50, together 1,000
    monkeypatch.setattr(fetch_stream, "STREAM_CHUNK", 7)
    streamed = imap.cmd(command)
    assert streamed[:-1] == read[:-1] and status(streamed) == status(read)


def test_streamed_body_sets_seen(imap: RawImap, monkeypatch: pytest.MonkeyPatch) -> None:
    """A streamed non-PEEK BODY[] sets \\Seen and the FLAGS item follows the literal
    (RFC 9051 §6.4.5)."""
    monkeypatch.setattr(fetching, "STREAM_MIN", 1)
    assert status(imap.cmd("SELECT INBOX")).startswith(b"OK")
    lines = imap.cmd("FETCH 2 (BODY[])")
    head = b"* 2 FETCH (BODY[] {%d}\r\n%s FLAGS (" % (len(PLAIN), PLAIN)
    assert lines[0].startswith(head) and lines[0].endswith(b"\\Seen))"), lines  # + \Recent
    assert status(lines).startswith(b"OK")
