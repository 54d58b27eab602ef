"""`message.compose`: the bytes of a message written in the webmail.

Pins: CRLF line ends only; non-ASCII names and Subject as RFC 2047 encoded-words that
our own parser decodes back; a non-ASCII body in quoted-printable UTF-8, an ASCII one
as 7bit; a line break typed into the Subject does not start a header field; no Bcc
field; the result parses with `message.parse` to the same Subject, From and text.
"""

from __future__ import annotations

import re

from pillarbox.message import parse
from pillarbox.message.compose import plain_text_message
from pillarbox.message.mime import param_text


def test_ascii_message_is_7bit_with_crlf() -> None:
    data = plain_text_message(
        sender=("", "alice@example.test"),
        to=[("", "bob@example.test")],
        subject="hi",
        body="line one\nline two",
    )
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"Content-Transfer-Encoding: 7bit\r\n" in data
    assert data.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    assert data.isascii()


def test_non_ascii_is_encoded_and_parses_back() -> None:
    data = plain_text_message(
        sender=("Älice Ünicode", "alice@example.test"),
        to=[("Bob", "bob@example.test")],
        cc=[("", "carol@other.test")],
        subject="Grüße\r\nBcc: everyone@example.test",
        body="héllo — wörld\n",
    )
    assert data.isascii()
    assert re.search(rb"^Subject: =\?utf-8\?", data, re.MULTILINE)
    assert not re.search(rb"^Bcc:", data, re.MULTILINE | re.IGNORECASE)
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    meta = parse(data)
    assert meta.subject == "Grüße Bcc: everyone@example.test"
    assert "Älice Ünicode" in meta.from_
    assert "carol@other.test" in meta.cc
    assert meta.body_text.strip() == "héllo — wörld"


def test_rfc2231_parameter_values_are_decoded() -> None:
    """RFC 2231 §4: charset'language'percent-encoded; the plain form otherwise."""
    params = [("filename*", "utf-8'de'%C3%BCber.txt"), ("name", "plain.txt")]
    assert param_text(params, "filename") == "über.txt"
    assert param_text(params, "name") == "plain.txt"
    assert param_text([("filename*", "no-quotes%20here")], "filename") == "no-quotes here"
    assert param_text([], "filename") is None
