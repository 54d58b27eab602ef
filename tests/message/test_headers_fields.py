"""HEADER.FIELDS (RFC 9051 §6.4.5) from the one-pass field matcher agrees with `scan_header`.

`header_fields` splits a header block with a regular expression (it runs for every
message of a FETCH of header fields); `scan_header` is the reference split every other
header reader uses. Both must see the same fields with the same bytes, on real mail and
on broken mail: bare LF, folding, whitespace before the colon, 8-bit bytes, a header
cut short by a line that is not a field, no final line end.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from pillarbox.message.headers import header_fields, scan_header


def reference(block: bytes, names: Sequence[str], exclude: bool) -> bytes:
    """HEADER.FIELDS as `scan_header` splits the block (the former implementation)."""
    wanted = {n.lower() for n in names}
    fields, _ = scan_header(block)
    eol = b"\n" if b"\n" in block and b"\r\n" not in block else b"\r\n"
    out: list[bytes] = []
    for field in fields:
        if (field.name in wanted) != exclude:
            raw = block[field.start : field.end]
            if not raw.endswith(b"\n"):
                raw += eol
            out.append(raw)
    out.append(eol)
    return b"".join(out)


NAMES = ["From", "To", "Subject", "Date", "Message-ID", "X-A", "k", "\u212a", "é"]
LINES = st.sampled_from(
    [
        b"From: a@b.example\r\n",
        b"from : a@b\r\n",
        b"To:\tc@d\n",
        b"Subject: hello\r\n",
        b"SUBJECT:x",
        b"  folded more\r\n",
        b"\tfolded tab\n",
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n",
        b"Message-ID: <x@y>\r\n",
        b"X-A: \xff\xfe 8-bit\r\n",
        b"K: kelvin\r\n",
        b"not a field\r\n",
        b"A b: space in name\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"\rX: y\r\n",
        b": empty name\r\n",
        b"X-Null: a\x00b\r\n",
        b"Body text: after the header\r\n",
    ]
)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(LINES, max_size=12),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4),
    st.booleans(),
)
def test_header_fields_match_scan_header(
    lines: list[bytes], names: list[str], exclude: bool
) -> None:
    block = b"".join(lines)
    assert header_fields(block, names, exclude) == reference(block, names, exclude)


def test_header_fields_of_a_real_header() -> None:
    block = (
        b"Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"From: Someone <s@example.test>\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  and more\r\n"
        b"Message-Id: <1@example.test>\r\n"
        b"\r\n"
    )
    names = ["FROM", "SUBJECT", "MESSAGE-ID", "DATE"]
    assert header_fields(block, names, False) == (
        b"From: Someone <s@example.test>\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  and more\r\n"
        b"Message-Id: <1@example.test>\r\n"
        b"\r\n"
    )
    assert header_fields(block, names, True) == reference(block, names, True)
