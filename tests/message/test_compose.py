"""`message.compose`: the bytes of a message written in the webmail.

Pins: CRLF line ends only; non-ASCII names and Subject as RFC 2047 encoded-words that
our own parser decodes back; a non-ASCII body in quoted-printable UTF-8, an ASCII one
as 7bit; a line break typed into the Subject does not start a header field; no Bcc
field; the result parses with `message.parse` to the same Subject, From and text.
"""

from __future__ import annotations

import re

from pillarbox.message import parse
from pillarbox.message.compose import compose_message
from pillarbox.message.mime import param_text


def test_ascii_message_is_7bit_with_crlf() -> None:
    data = compose_message(
        sender=("", "alice@example.test"),
        to=[("", "bob@example.test")],
        subject="hi",
        text="line one\nline two",
    )
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"Content-Transfer-Encoding: 7bit\r\n" in data
    assert data.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    assert data.isascii()


def test_non_ascii_is_encoded_and_parses_back() -> None:
    data = compose_message(
        sender=("Älice Ünicode", "alice@example.test"),
        to=[("Bob", "bob@example.test")],
        cc=[("", "carol@other.test")],
        subject="Grüße\r\nBcc: everyone@example.test",
        text="héllo — wörld\n",
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


def test_reply_and_forward_subjects_do_not_stack() -> None:
    from pillarbox.message.compose import forward_subject, reply_subject

    assert reply_subject("Plans") == "Re: Plans"
    assert reply_subject("Re: RE:re:  Plans") == "Re: Plans"
    assert reply_subject("Fwd: Plans") == "Re: Fwd: Plans"
    assert forward_subject("Fwd: FW: Plans") == "Fwd: Plans"
    assert forward_subject("Re: Plans") == "Fwd: Re: Plans"


def test_reply_threading_rfc5322() -> None:
    from pillarbox.message.compose import reply_threading

    # RFC 5322 §3.6.4: References = parent's References + parent's Message-ID
    assert reply_threading("<c@x>", "<a@x> <b@x>", "<b@x>") == ("<c@x>", "<a@x> <b@x> <c@x>")
    # no References: the parent's In-Reply-To, when it holds a single ID
    assert reply_threading("<c@x>", "", "<b@x>") == ("<c@x>", "<b@x> <c@x>")
    assert reply_threading("<c@x>", "", "<a@x> <b@x>") == ("<c@x>", "<c@x>")
    assert reply_threading("", "<a@x>", "") == ("", "")


def test_quoted_reply() -> None:
    from pillarbox.message.compose import quoted_reply

    text = quoted_reply("Hi\n\n> earlier\n", "Sat, 5 Dec 2026", "Bob")
    assert text == "\n\nOn Sat, 5 Dec 2026, Bob wrote:\n> Hi\n>\n> > earlier\n"


def test_formatted_message_with_attachment() -> None:
    import email
    from email.policy import default

    from pillarbox.message.compose import Attachment, compose_message

    data = compose_message(
        sender=("", "alice@example.test"),
        to=[("", "bob@example.test")],
        bcc=[("", "carol@other.test")],
        subject="s",
        text="bold\n",
        html="<b>bold</b>",
        attachments=[Attachment("naïve.txt", "text/plain", b"x")],
    )
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = email.message_from_bytes(data, policy=default)
    assert message.get_content_type() == "multipart/mixed"
    body, attached = message.get_payload()  # type: ignore[misc]
    assert [p.get_content_type() for p in body.get_payload()] == ["text/plain", "text/html"]
    assert attached.get_filename() == "naïve.txt"
    assert b"filename*=utf-8''na%C3%AFve.txt" in data
    assert message["Bcc"] == "carol@other.test"  # written only when asked (drafts)
