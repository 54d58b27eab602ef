"""ENVELOPE: the RFC 9051 §7.5.2 envelope of a message, as ready-to-send IMAP bytes.

Owns the choice of header fields (first occurrence wins for duplicates), the Sender and
Reply-To defaults, and the address-list form with group markers. Values are sent raw:
encoded-words are left for the client to decode (RFC 9051 §7.5.2), 8-bit values go as
literals (see `imapstr`). It must not decode or re-encode header text.
"""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.message.addresses import Address, parse_address_list
from pillarbox.message.headers import Field, first_value
from pillarbox.message.imapstr import NIL, nstring


def _text(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1")


def address_bytes(address: Address) -> bytes:
    """(name adl mailbox host) — RFC 9051 §9 `address`."""
    return b"(%s %s %s %s)" % (
        nstring(_text(address.name)),
        nstring(_text(address.adl)),
        nstring(_text(address.mailbox)),
        nstring(_text(address.host)),
    )


def address_list_bytes(raw: bytes | None) -> bytes | None:
    """ "(" 1*address ")" with no spaces between addresses, or None if there are none."""
    if raw is None:
        return None
    parsed = parse_address_list(raw.decode("latin-1"))
    if not parsed:
        return None
    return b"(" + b"".join(address_bytes(a) for a in parsed) + b")"


def envelope(fields: Sequence[Field]) -> bytes:
    """The parenthesised ENVELOPE for a message whose header fields are `fields`.

    RFC 9051 §7.5.2: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to,
    message-id. Sender and Reply-To take the From value when absent or empty. A field
    that is absent is NIL; one that is present but empty is "" (address lists: NIL).
    """
    from_ = address_list_bytes(first_value(fields, "from"))
    sender = address_list_bytes(first_value(fields, "sender")) or from_
    reply_to = address_list_bytes(first_value(fields, "reply-to")) or from_
    items = (
        nstring(first_value(fields, "date")),
        nstring(first_value(fields, "subject")),
        from_ or NIL,
        sender or NIL,
        reply_to or NIL,
        address_list_bytes(first_value(fields, "to")) or NIL,
        address_list_bytes(first_value(fields, "cc")) or NIL,
        address_list_bytes(first_value(fields, "bcc")) or NIL,
        nstring(first_value(fields, "in-reply-to")),
        nstring(first_value(fields, "message-id")),
    )
    return b"(" + b" ".join(items) + b")"
