"""`parse()`: one pass over a message that computes everything the store keeps.

Returns `model.MessageMeta`, the one metadata type the store keeps as it is given: the
search-side fields (decoded subject and addresses, the sent date of RFC 5322 §3.3, the
decoded header block for SEARCH HEADER, body text for full-text search, the RFC 8970
preview) and ENVELOPE, BODYSTRUCTURE, BODY and the part offsets, which come from
`envelope`, `bodystructure` and `parts`.

It must never raise on any bytes from the network (`internal=True` is the exception: see
`parse`), and it must not import anything outside the standard library and the leaf
`pillarbox.model`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pillarbox.message.addresses import format_address_list
from pillarbox.message.bodystructure import structure
from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope import envelope
from pillarbox.message.headers import Field, unfold
from pillarbox.message.message_ids import message_ids
from pillarbox.message.parts import Entity, parts_json, walk
from pillarbox.message.text import body_text, preview
from pillarbox.model.messages import MessageMeta

HEADERS_CAP = 256 * 1024  # characters of decoded header text kept for SEARCH HEADER


class MalformedMessage(ValueError):
    """A message Pillarbox built itself (``internal=True``) is not well-formed MIME."""

    def __init__(self, defects: list[str]) -> None:
        super().__init__("malformed message: " + "; ".join(defects))
        self.defects = tuple(defects)


def sent_date(raw: bytes | None) -> datetime | None:
    """The Date: field as an aware datetime (RFC 5322 §3.3), or None if unusable.

    A zone of -0000 ("no information", RFC 5322 §3.3) and obsolete zone names that
    `email.utils` cannot place are taken as UTC.
    """
    if raw is None:
        return None
    try:
        when = parsedate_to_datetime(raw.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def _decoded(fields: list[Field], name: str) -> str:
    for field in fields:
        if field.name == name:
            return decode_header_value(unfold(field.value))
    return ""


def _addresses(fields: list[Field], name: str) -> str:
    for field in fields:
        if field.name == name:
            return format_address_list(unfold(field.value).decode("latin-1"))
    return ""


def _header_text(data: bytes, fields: list[Field]) -> str:
    """ "Name: decoded value\\n" per field, names as written, for SEARCH HEADER."""
    lines: list[str] = []
    total = 0
    for field in fields:
        colon = data.find(b":", field.start, field.end)
        name = data[field.start : colon].rstrip(b" \t").decode("ascii", "replace")
        line = f"{name}: {decode_header_value(unfold(field.value))}\n"
        total += len(line)
        if total > HEADERS_CAP:
            break
        lines.append(line)
    return "".join(lines)


def parse(data: bytes, *, internal: bool = False) -> MessageMeta:
    """Parse a stored message once; see `MessageMeta` for what comes back.

    Any bytes give a result: malformed MIME is repaired the way Dovecot does (see
    `parts`). With `internal=True` (a message Pillarbox composed itself: a DSN, a
    webmail draft) a repair means a bug in our own composer, so it raises
    `MalformedMessage` instead of hiding it.
    """
    data = bytes(data)
    root, defects = walk(data)
    if internal and defects:
        raise MalformedMessage(defects)
    fields = root.fields
    text = _clean(body_text(data, root))
    return MessageMeta(
        size=len(data),
        envelope=envelope(fields),
        bodystructure=structure(data, root, extended=True),
        body=structure(data, root, extended=False),
        parts=parts_json(root),
        subject=_clean(_decoded(fields, "subject")),
        from_=_clean(_addresses(fields, "from")),
        to=_clean(_addresses(fields, "to")),
        cc=_clean(_addresses(fields, "cc")),
        bcc=_clean(_addresses(fields, "bcc")),
        message_id=_clean(_decoded(fields, "message-id")),
        sent_date=sent_date(_first_raw(fields, "date")),
        headers=_clean(_header_text(data, fields)),
        body_text=text,
        preview=preview(text),
        references=_clean(" ".join(message_ids(_decoded(fields, "references")))),
        in_reply_to=_clean(" ".join(message_ids(_decoded(fields, "in-reply-to"))[:1])),
    )


def _clean(text: str) -> str:
    """Drop NUL: no database text column (PostgreSQL's in particular) accepts it."""
    return text.replace("\x00", "") if "\x00" in text else text


def _first_raw(fields: list[Field], name: str) -> bytes | None:
    for field in fields:
        if field.name == name:
            return unfold(field.value)
    return None


__all__ = ["Entity", "MalformedMessage", "parse", "sent_date"]
