"""Dot-stuffing round trips, and only CRLF.CRLF ends the data (anti-smuggling)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.dotstuff import Unstuffer, stuff


def decode_in_pieces(
    data: bytes, size: int, *, normalize_lf: bool = False
) -> tuple[Unstuffer, bytes]:
    un = Unstuffer(normalize_lf=normalize_lf)
    out = bytearray()
    for i in range(0, len(data), size):
        out += un.feed(data[i : i + size])
    return un, bytes(out)


@given(
    st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"x.y"]), max_size=30),
    st.integers(1, 7),
)
def test_round_trip(parts: list[bytes], size: int) -> None:
    message = b"".join(parts)
    if not message.endswith(b"\r\n") and message:
        message += b"\r\n"
    un, decoded = decode_in_pieces(stuff(message) + b"NEXT", size)
    assert un.done
    assert decoded == message
    assert un.trailing == b"NEXT"


@pytest.mark.parametrize("marker", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
@pytest.mark.parametrize("size", [1, 2, 3, 1000])
@pytest.mark.parametrize("normalize_lf", [False, True])
def test_bare_end_markers_do_not_end(marker: bytes, size: int, normalize_lf: bool) -> None:
    """Whether bare LFs are normalised or not, no end marker with a bare LF or CR ends
    the data."""
    un, out = decode_in_pieces(
        b"a" + marker + b"MAIL FROM:<x@y>\r\n", size, normalize_lf=normalize_lf
    )
    assert not un.done
    assert un.bare_line_ending
    if normalize_lf and marker in (b"\n.\n", b"\r\n.\n", b"\n.\r\n"):
        assert out == b"a\r\n\r\nMAIL FROM:<x@y>\r\n"  # the "." line lost its dot


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_end_at_start_and_trailing(size: int) -> None:
    un, decoded = decode_in_pieces(b".\r\nQUIT\r\n", size)
    assert un.done and decoded == b""
    assert un.trailing == b"QUIT\r\n"


class _ByLine(Unstuffer):
    """The line-by-line decoder alone: the reference the whole-buffer path must match."""

    __slots__ = ()

    def _feed_whole(self, data: bytes) -> bytes | None:
        return None


@given(
    st.lists(
        st.sampled_from([b".", b"..", b"a", b"\r\n", b"\r", b"\n", b".\r\n", b"x.y", b"\r\n."]),
        max_size=40,
    ),
    st.lists(st.integers(1, 9), min_size=1, max_size=10),
    st.booleans(),
)
def test_whole_buffer_path_matches_line_by_line(
    parts: list[bytes], sizes: list[int], normalize_lf: bool
) -> None:
    """Any input, cut anywhere, either mode: same output, end, trailing bytes and
    bare-ending flag."""
    data = b"".join(parts) + b"\r\n.\r\nNEXT"
    fast, slow = Unstuffer(normalize_lf=normalize_lf), _ByLine(normalize_lf=normalize_lf)
    got_fast, got_slow = bytearray(), bytearray()
    i = k = 0
    while i < len(data):
        size = sizes[k % len(sizes)]
        k += 1
        got_fast += fast.feed(data[i : i + size])
        got_slow += slow.feed(data[i : i + size])
        i += size
    assert bytes(got_fast) == bytes(got_slow)
    assert (fast.done, fast.trailing) == (slow.done, slow.trailing)
    assert fast.bare_line_ending == slow.bare_line_ending
