"""Reading back stored ENVELOPE bytes: the inverse of `message.envelope` for the fields
SORT and THREAD need, total on any input.

Pins: quoted strings with escapes, literals (8-bit subjects), NIL, group markers left
out of address lists, and garbage giving empty fields rather than an exception.
"""

from __future__ import annotations

from pillarbox.message.envelope_fields import EnvelopeAddress, EnvelopeFields, read_envelope
from pillarbox.message.parse import parse


def test_round_trip_through_parse() -> None:
    meta = parse(
        b'From: "Al \\"B" <al@x.test>\r\nTo: g: a@b.test, d@e.test;\r\n'
        b"Cc: =?utf-8?q?Z=C3=A9?= <z@y.test>\r\nSubject: caf\xc3\xa9\r\n"
        b"Message-ID: <1@x>\r\nIn-Reply-To: <0@x>\r\n\r\nhi"
    )
    fields = read_envelope(meta.envelope)
    assert fields.subject == b"caf\xc3\xa9"  # sent as a literal
    assert fields.from_ == [EnvelopeAddress(b'Al "B', b"al", b"x.test")]
    assert fields.to == [
        EnvelopeAddress(None, b"a", b"b.test"),
        EnvelopeAddress(None, b"d", b"e.test"),
    ]
    assert fields.cc == [EnvelopeAddress(b"=?utf-8?q?Z=C3=A9?=", b"z", b"y.test")]
    assert (fields.in_reply_to, fields.message_id) == (b"<0@x>", b"<1@x>")


def test_garbage_gives_empty_fields() -> None:
    for data in (b"", b"(", b"NIL", b'("a" "b")', b"({99}\r\nab)", b'("unterminated'):
        assert read_envelope(data) == EnvelopeFields()
