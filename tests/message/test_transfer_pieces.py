"""The piecewise decoders give what the whole-buffer ones give, however the input is cut
(a large BINARY[] is decoded as it streams, issue 16)."""

from __future__ import annotations

import base64
import random

import pytest

from pillarbox.message import transfer
from pillarbox.message.transfer import (
    Base64Decoder,
    QuotedPrintableDecoder,
    decode_base64,
    decode_quoted_printable,
)

# Encoded-line pieces, malformed ones included: escapes cut short, soft line breaks
# with blanks after "=", bare LF, trailing blanks, 8-bit bytes.
QP_PIECES = [b"a", b"=", b"=4", b"=41", b" ", b"\t", b"\r\n", b"\n", b"=\r\n", b"= \r\n"]
QP_PIECES += [b"\xff", b"=0D", b"=00", b"x", b"\r"]


def pieces(data: bytes, rng: random.Random, most: int) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        size = rng.randrange(1, most + 1)
        out.append(data[at : at + size])
        at += size
    return out


@pytest.mark.parametrize("seed", range(200))
def test_base64_in_pieces(seed: int) -> None:
    rng = random.Random(seed)
    encoded = base64.encodebytes(rng.randbytes(rng.randrange(0, 3000)))
    if seed % 2:
        encoded = encoded.replace(b"\n", b"\r\n")
    if seed % 3 == 0 and encoded:
        encoded = encoded[: -rng.randrange(1, 5)]  # padding or a sextet missing
    encoded += bytes(rng.choice(b"!= \r\n") for _ in range(rng.randrange(4)))  # stray bytes
    decoder = Base64Decoder()
    got = b"".join(decoder.feed(p) for p in pieces(encoded, rng, 50)) + decoder.end()
    assert got == decode_base64(encoded)


@pytest.mark.parametrize("seed", range(300))
def test_quoted_printable_in_pieces(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with lines longer than the carry allowed between pieces (cut inside them)."""
    monkeypatch.setattr(transfer, "_QP_CARRY_MAX", 10 if seed % 2 else 64 * 1024)
    rng = random.Random(seed)
    encoded = b"".join(rng.choice(QP_PIECES) for _ in range(rng.randrange(0, 400)))
    decoder = QuotedPrintableDecoder()
    got = b"".join(decoder.feed(p) for p in pieces(encoded, rng, 40)) + decoder.end()
    assert got == decode_quoted_printable(encoded)


def test_quoted_printable_carry_is_bounded() -> None:
    """A 1 MB line without a break is not held whole between pieces."""
    decoder = QuotedPrintableDecoder()
    out = b""
    for _ in range(64):
        out += decoder.feed(b"abc=41" * 2730)  # 16 KiB pieces of one long line
        assert len(decoder._carry) <= transfer._QP_CARRY_MAX + 16 * 1024
    assert out + decoder.end() == b"abcA" * 2730 * 64
