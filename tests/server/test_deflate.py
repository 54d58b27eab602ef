"""The listener's raw DEFLATE layer (RFC 4978), without sockets.

Pins: what `deflate` writes is raw DEFLATE (wbits -15) that a peer inflates completely
at once (Z_SYNC_FLUSH: nothing held back); a small input that inflates hugely comes out
READ_SIZE at a time (never all in memory); bytes handed over at start-up are inflated
first; corrupt input raises zlib.error.
"""

from __future__ import annotations

import zlib

import pytest

from pillarbox.server.listener import READ_SIZE, Deflate


def test_each_write_is_flushed() -> None:
    d = Deflate()
    peer = zlib.decompressobj(-15)
    assert peer.decompress(d.deflate(b"* OK one\r\n")) == b"* OK one\r\n"
    assert peer.decompress(d.deflate(b"* OK two\r\n")) == b"* OK two\r\n"


def test_inflate_is_bounded() -> None:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = c.compress(b"\x00" * (20 * READ_SIZE)) + c.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < READ_SIZE
    d = Deflate(bomb[:10])
    d.feed(bomb[10:])
    pieces = []
    while piece := d.inflate():
        assert len(piece) <= READ_SIZE
        pieces.append(piece)
    assert b"".join(pieces) == b"\x00" * (20 * READ_SIZE)
    assert d.inflate() == b""  # needs more input


def test_corrupt_input() -> None:
    d = Deflate(b"\xff\xff\xff\xff garbage")
    with pytest.raises(zlib.error):
        d.inflate()
