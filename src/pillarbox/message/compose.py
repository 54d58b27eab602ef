"""Writing a message (RFC 5322) from what a person typed in a form.

Owns the bytes of a message the webmail submits: CRLF line ends (RFC 5322 §2.1),
non-ASCII display names and Subject as encoded-words (RFC 2047 §5), a UTF-8 text body
in quoted-printable when it is not plain ASCII (RFC 2045 §6.7) so that the message
passes any 7-bit hop, and header lines folded at 78 characters (RFC 5322 §2.1.1). The
standard library's `email` package does the encoding; this module chooses the fields.

Formatted mail is multipart/alternative (RFC 2046 §5.1.4) with a text part made by
`html_text`; attachments make it multipart/mixed; replies get "Re: " once and
In-Reply-To/References (RFC 5322 §3.6.4), forwards "Fwd: " once.

Must not: decide who may send as whom (services.submission does), add Message-ID or
Date when the caller leaves them out (submission adds them, RFC 6409 §8), or do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from io import BytesIO

from pillarbox.message.message_ids import message_ids

# (display name, "local@domain"): what `message.addresses` returns for each mailbox.
Mailbox = tuple[str, str]
# Body lines are wrapped by nobody: quoted-printable keeps any line length legal
# (RFC 2045 §6.7 rule 5 soft line breaks), and what the person typed stays as typed.


def _header_address(mailbox: Mailbox) -> HeaderAddress:
    name, spec = mailbox
    local, _, domain = spec.rpartition("@")
    return HeaderAddress(display_name=name, username=local, domain=domain)


def _short_lines(text: str) -> bool:
    """Every line fits in 998 octets (RFC 5322 §2.1.1), so 7bit is allowed."""
    return all(len(line) <= 998 for line in text.split("\n"))


# --- formatted messages and attachments -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to send: its name as the person will see it, its media type, its bytes.
    A ``message/rfc822`` attachment (a forwarded message) is written as it is, byte for
    byte (RFC 2046 §5.2.1: no encoding but 7bit, 8bit or binary)."""

    filename: str
    mime_type: str
    data: bytes


def _cte(text: str) -> str:
    return "7bit" if text.isascii() and _short_lines(text) else "quoted-printable"


def _html_document(fragment: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f"<body>{fragment}</body></html>\n"
    )


def _attach(message: EmailMessage, item: Attachment) -> None:
    maintype, _, subtype = item.mime_type.lower().partition("/")
    if not maintype or not subtype or "\n" in item.mime_type or "\r" in item.mime_type:
        maintype, subtype = "application", "octet-stream"
    if (maintype, subtype) == ("message", "rfc822"):
        part = EmailMessage(policy=SMTP)
        part["Content-Type"] = "message/rfc822"
        part["Content-Disposition"] = "attachment"
        part.set_param("filename", item.filename, header="Content-Disposition")
        part["Content-Transfer-Encoding"] = "7bit" if item.data.isascii() else "8bit"
        # The generator writes a str payload as is; surrogateescape gives the bytes back.
        part.set_payload(item.data.decode("ascii", "surrogateescape"))
        if message.get_content_maintype() != "multipart":
            message.make_mixed()
        message.attach(part)
        return
    # add_attachment writes a non-ASCII name as RFC 2231 filename*=utf-8''... under the
    # SMTP policy (RFC 2231 §4), and base64-encodes the bytes.
    message.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)


def compose_message(
    *,
    sender: Mailbox,
    to: Sequence[Mailbox],
    cc: Sequence[Mailbox] = (),
    bcc: Sequence[Mailbox] = (),
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A message with a text body, a text/html alternative when `html` is given
    (multipart/alternative, plain text first: RFC 2046 §5.1.4 puts the richest last),
    and attachments after it (multipart/mixed). `bcc` is written only for a draft,
    which must remember them; a sent message passes none (RFC 5322 §3.6.3)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _header_address(sender)
    if to:
        message["To"] = [_header_address(a) for a in to]
    if cc:
        message["Cc"] = [_header_address(a) for a in cc]
    if bcc:
        message["Bcc"] = [_header_address(a) for a in bcc]
    message["Subject"] = " ".join(subject.splitlines())
    for name, value in extra_headers:
        message[name] = value
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    message.set_content(body, subtype="plain", charset="utf-8", cte=_cte(body))
    if html is not None:
        document = _html_document(html)
        message.add_alternative(document, subtype="html", charset="utf-8", cte=_cte(document))
    for item in attachments:
        _attach(message, item)
    out = BytesIO()
    _RawPayloadGenerator(out, policy=SMTP).flatten(message)
    return out.getvalue()


class _RawPayloadGenerator(BytesGenerator):
    """Writes a str payload held as surrogate-escaped bytes (a forwarded message with
    8bit text) back as those bytes; the standard generator refuses them there."""

    def _encode(self, s: str) -> bytes:
        return s.encode("ascii", "surrogateescape")


# --- replies and forwards ---------------------------------------------------------------

_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^(?:\s*(?:fwd?|wg)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)


def reply_subject(subject: str) -> str:
    """ "Re: " once, however many the original had ("Re: Re: x" is "Re: x")."""
    return "Re: " + _REPLY_PREFIX.sub("", " ".join(subject.split()))


def forward_subject(subject: str) -> str:
    """ "Fwd: " once, however many the original had."""
    return "Fwd: " + _FORWARD_PREFIX.sub("", " ".join(subject.split()))


def reply_threading(message_id: str, references: str, in_reply_to: str) -> tuple[str, str]:
    """(In-Reply-To, References) of a reply (RFC 5322 §3.6.4): In-Reply-To is the
    parent's Message-ID; References is the parent's References (or, if it has none, its
    In-Reply-To when that holds one ID) followed by the parent's Message-ID. Empty
    strings when the parent has no Message-ID: there is then nothing to refer to."""
    parent = message_ids(message_id)
    if not parent:
        return "", ""
    chain = message_ids(references)
    if not chain:
        earlier = message_ids(in_reply_to)
        chain = earlier if len(earlier) == 1 else []
    chain = [i for i in chain if i != parent[0]] + [parent[0]]
    return parent[0], " ".join(chain)


def quoted_reply(text: str, date: str, name: str) -> str:
    """ "On DATE, NAME wrote:" and the text with "> " before each line, under a blank
    line where the reply is written."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    quoted = "\n".join(("> " + line) if line else ">" for line in lines)
    intro = f"On {date}, {name} wrote:" if date else f"{name} wrote:"
    return f"\n\n{intro}\n{quoted}\n"


def forwarded_text(text: str, fields: Sequence[tuple[str, str]]) -> str:
    """The body of an inline forward: the original's main fields, then its text."""
    head = "\n".join(f"{name}: {value}" for name, value in fields if value)
    return f"\n\n---------- Forwarded message ----------\n{head}\n\n{text.rstrip()}\n"
