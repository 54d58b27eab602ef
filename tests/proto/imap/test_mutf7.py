"""Modified UTF-7 (RFC 3501 §5.1.3): the RFC's example, round trips, strict rejection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.imap import mutf7


def test_rfc_example() -> None:
    assert mutf7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert mutf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert mutf7.encode("a&b") == "a&-b"
    assert mutf7.decode(b"a&-b") == "a&b"
    assert mutf7.encode("😀") == "&2D3eAA-"


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_roundtrip(name: str) -> None:
    encoded = mutf7.encode(name)
    assert encoded.isascii()
    assert mutf7.decode(encoded) == name


@pytest.mark.parametrize(
    "bad",
    [
        "&Jjo",  # unterminated
        "&AGE-",  # printable ASCII encoded
        "&AOk-&AOk-",  # null shift between sections
        "&Jjo!-",  # not base64
        "é",  # raw 8-bit
        "a\tb",  # control character
        "&2D0-",  # lone surrogate
        "&AOl-",  # non-zero padding bits
        "&AA-",  # odd length
        b"\xc3\xa9",
    ],
)
def test_invalid(bad: str | bytes) -> None:
    with pytest.raises(mutf7.Mutf7Error):
        mutf7.decode(bad)


def test_encode_lone_surrogate() -> None:
    with pytest.raises(mutf7.Mutf7Error):
        mutf7.encode("\udc80")
