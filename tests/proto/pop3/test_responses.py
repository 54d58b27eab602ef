"""POP3 replies: status lines, listings, and streamed dot-stuffing / TOP at every split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.dotstuff import Unstuffer, stuff
from pillarbox.proto.pop3 import responses
from pillarbox.proto.pop3.responses import ChunkStuffer, TopFilter

MESSAGE = (
    b"From: a@example.test\r\nSubject: dots\r\n\r\n.leading dot\r\nline 2\r\n"
    b"..two dots\r\n.\r\nlast line without CRLF."
)


def stream_stuff(message: bytes, cuts: list[int]) -> bytes:
    s = ChunkStuffer()
    out = b""
    prev = 0
    for cut in [*cuts, len(message)]:
        out += s.feed(message[prev:cut])
        prev = cut
    return out + s.end()


def stream_top(message: bytes, lines: int, cuts: list[int]) -> bytes:
    f = TopFilter(lines)
    out = b""
    prev = 0
    for cut in [*cuts, len(message)]:
        out += f.feed(message[prev:cut])
        prev = cut
        if f.done:
            break
    return out + f.end()


def reference_top(message: bytes, lines: int) -> bytes:
    """TOP the obvious way: split into LF-ended lines, header to the empty line, n more."""
    parts = [line + b"\n" for line in message.split(b"\n")]
    parts[-1] = parts[-1][:-1]
    for i, line in enumerate(parts):
        if line in (b"\r\n", b"\n"):
            return b"".join(parts[: i + 1 + lines])
    return message


def test_status_lines_with_codes() -> None:
    """RFC 2449 §8 response codes go in brackets right after the status."""
    assert responses.ok() == b"+OK\r\n"
    assert responses.ok("ready") == b"+OK ready\r\n"
    assert responses.err("locked", "IN-USE") == b"-ERR [IN-USE] locked\r\n"
    assert responses.err("x\r\ny") == b"-ERR x  y\r\n"  # never a second line
    assert len(responses.err("x" * 1000)) == 512


def test_multiline_is_dot_stuffed() -> None:
    """RFC 1939 §3: lines starting with "." are doubled; "." CRLF ends the reply."""
    assert responses.multiline(responses.ok("list"), ["1 10", ".x"]) == (
        b"+OK list\r\n1 10\r\n..x\r\n.\r\n"
    )
    assert responses.multiline(responses.ok(), []) == b"+OK\r\n.\r\n"
    assert responses.auth_challenge(b"") == b"+ \r\n"


def test_chunk_stuffer_matches_whole_message_stuffing_at_every_split() -> None:
    """Streaming RETR gives exactly `dotstuff.stuff` of the whole message."""
    expected = stuff(MESSAGE)
    for i in range(len(MESSAGE) + 1):
        assert stream_stuff(MESSAGE, [i]) == expected, i
    assert stream_stuff(MESSAGE, list(range(1, len(MESSAGE)))) == expected
    assert stream_stuff(b"", []) == b".\r\n"
    assert stream_stuff(b".\r\n", [1]) == b"..\r\n.\r\n"


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=8))
def test_chunk_stuffer_round_trips(message: bytes, cuts: list[int]) -> None:
    """Whatever the bytes and chunking, a client unstuffing the stream gets them back."""
    message = message.replace(b"\r", b"").replace(b"\n", b"\r\n")  # stored mail is CRLF
    cuts = sorted(c for c in cuts if c <= len(message))
    wire = stream_stuff(message, cuts)
    assert wire == stuff(message)
    u = Unstuffer()
    body = u.feed(wire)
    assert u.done
    expected = message if not message or message.endswith(b"\r\n") else message + b"\r\n"
    assert body == expected


def test_top_at_every_split() -> None:
    """TOP msg n: header, empty line, then n body lines, wherever chunks are cut."""
    for n in (0, 1, 2, 3, 100):
        expected = reference_top(MESSAGE, n)
        for i in range(len(MESSAGE) + 1):
            assert stream_top(MESSAGE, n, [i]) == expected, (n, i)
        assert stream_top(MESSAGE, n, list(range(1, len(MESSAGE)))) == expected


@given(
    st.lists(st.sampled_from([b"a", b"\r\n", b"\n", b"\r", b"H: v", b"."]), max_size=40),
    st.integers(0, 5),
    st.lists(st.integers(0, 100), max_size=6),
)
def test_top_matches_reference(pieces: list[bytes], n: int, cuts: list[int]) -> None:
    """Any message, any n, any chunking: TopFilter agrees with the line-split reference."""
    message = b"".join(pieces)
    cuts = sorted(c for c in cuts if c <= len(message))
    assert stream_top(message, n, cuts) == reference_top(message, n)


def test_top_of_headers_only_message() -> None:
    """A message without an empty line is all header: TOP sends it whole."""
    assert stream_top(b"Subject: x\r\nFrom: y\r\n", 5, [3]) == b"Subject: x\r\nFrom: y\r\n"
