"""Writing a new plain-text message (RFC 5322) from what a person typed in a form.

Owns the bytes of a message the webmail submits: CRLF line ends (RFC 5322 §2.1),
non-ASCII display names and Subject as encoded-words (RFC 2047 §5), a UTF-8 text body
in quoted-printable when it is not plain ASCII (RFC 2045 §6.7) so that the message
passes any 7-bit hop, and header lines folded at 78 characters (RFC 5322 §2.1.1). The
standard library's `email` package does the encoding; this module chooses the fields.

Must not: decide who may send as whom (services.submission does), add Message-ID or
Date when the caller leaves them out (submission adds them, RFC 6409 §8), or do I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP

# (display name, "local@domain"): what `message.addresses` returns for each mailbox.
Mailbox = tuple[str, str]
# Body lines are wrapped by nobody: quoted-printable keeps any line length legal
# (RFC 2045 §6.7 rule 5 soft line breaks), and what the person typed stays as typed.


def _header_address(mailbox: Mailbox) -> HeaderAddress:
    name, spec = mailbox
    local, _, domain = spec.rpartition("@")
    return HeaderAddress(display_name=name, username=local, domain=domain)


def plain_text_message(
    *,
    sender: Mailbox,
    to: Sequence[Mailbox],
    cc: Sequence[Mailbox] = (),
    subject: str,
    body: str,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The message as bytes with CRLF line ends. Bcc recipients are never written into
    the message (RFC 5322 §3.6.3 allows leaving the field out): they only go into the
    envelope, so the other recipients do not learn of them."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _header_address(sender)
    if to:
        message["To"] = [_header_address(a) for a in to]
    if cc:
        message["Cc"] = [_header_address(a) for a in cc]
    # A line break in a form field must not start a header field of its own.
    message["Subject"] = " ".join(subject.splitlines())
    for name, value in extra_headers:
        message[name] = value
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    cte = "7bit" if text.isascii() and _short_lines(text) else "quoted-printable"
    message.set_content(text, subtype="plain", charset="utf-8", cte=cte)
    return message.as_bytes()


def _short_lines(text: str) -> bool:
    """Every line fits in 998 octets (RFC 5322 §2.1.1), so 7bit is allowed."""
    return all(len(line) <= 998 for line in text.split("\n"))
