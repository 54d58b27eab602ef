"""BodyScanner: its verdict on a message does not depend on how the message is chunked."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.body import BodyScanner


def reference(data: bytes, max_size: int, max_header: int, max_line: int) -> bytes | None:
    """The same verdict computed on the whole message at once, the slow obvious way."""
    if len(data) > max_size:
        return r.MESSAGE_TOO_BIG
    if re.search(rb"(?<!\r)\n|\r(?!\n)", data):
        return r.BARE_LINE_ENDING
    lines = data.split(b"\n")
    if any(len(line) + 1 > max_line for line in lines[:-1]) or len(lines[-1]) > max_line:
        return r.BODY_LINE_TOO_LONG
    if data.startswith(b"\r\n"):
        return None
    end = data.find(b"\r\n\r\n")
    header = len(data) if end < 0 else end + 4
    return r.HEADER_TOO_BIG if header > max_header else None


@given(
    st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"bb", b"S: v", b"."]), max_size=40),
    st.lists(st.integers(0, 80), max_size=6),
    st.integers(5, 60),
    st.integers(3, 30),
)
def test_chunking_is_invisible(
    parts: list[bytes], cuts: list[int], max_header: int, max_line: int
) -> None:
    data = b"".join(parts)
    scanner = BodyScanner(max_size=70, max_header=max_header, max_line=max_line)
    prev = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        scanner.feed(data[prev:cut])
        prev = cut
    scanner.feed(data[prev:])
    got = scanner.finish()
    want = reference(data, 70, max_header, max_line)
    if want is None or got is None:
        assert got == want
    else:
        # With several violations the first seen may differ; any one is a refusal.
        assert got in (
            r.MESSAGE_TOO_BIG,
            r.BARE_LINE_ENDING,
            r.BODY_LINE_TOO_LONG,
            r.HEADER_TOO_BIG,
        )
        if want == r.MESSAGE_TOO_BIG:
            assert got == want


def test_line_limit_inside_one_large_chunk() -> None:
    """Within one chunk holding many lines, a line of exactly `max_line` octets (CRLF
    included) passes and one octet more is refused, wherever the line sits."""
    for position in (1, 50, 98):
        for extra, want in ((0, None), (1, r.BODY_LINE_TOO_LONG)):
            lines = [b"Subject: x\r\n", b"\r\n"] + [b"y" * 68 + b"\r\n"] * 100
            lines.insert(position + 2, b"z" * (998 - 2 + extra) + b"\r\n")
            scanner = BodyScanner(max_size=10**6, max_header=10**6, max_line=998)
            scanner.feed(b"".join(lines))
            assert scanner.finish() == want


def test_too_big_wins_over_an_earlier_bare_cr() -> None:
    """A message over the size limit is refused as too big (552) even when a bare CR
    came first, whatever the chunking (hypothesis found the 554 once)."""
    data = b"\r" * 13 + b"\r\n" * 17 + b"S: v" * 6
    scanner = BodyScanner(max_size=70, max_header=5, max_line=3)
    scanner.feed(data[:2])
    scanner.feed(data[2:])
    assert scanner.finish() == r.MESSAGE_TOO_BIG
