"""Reading back the ENVELOPE bytes stored at delivery (the inverse of `envelope`).

SORT (RFC 5256 §3: FROM, TO, CC are the addr-mailbox of the first address; RFC 5957
DISPLAYFROM/DISPLAYTO its display name) and THREAD (Message-ID, In-Reply-To) need a few
fields of the envelope. The store keeps the envelope as ready-to-send IMAP bytes, so
instead of re-parsing the message we read those bytes: they are our own output (quoted
strings, literals, NIL, parenthesised lists), so the reader is small and total — any
bytes give a result, a malformed envelope gives empty fields.

Must not: import anything outside the standard library; decode encoded-words (callers
that display names do, with `encoded_words.decode_header_value`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

Node: TypeAlias = "bytes | list[Node] | None"


@dataclass(frozen=True, slots=True)
class EnvelopeAddress:
    """One (name adl mailbox host) address, raw bytes as in the envelope."""

    name: bytes | None
    mailbox: bytes | None
    host: bytes | None


@dataclass(frozen=True, slots=True)
class EnvelopeFields:
    """The envelope fields SORT and THREAD use (RFC 9051 §7.5.2 order)."""

    subject: bytes | None = None
    from_: list[EnvelopeAddress] = field(default_factory=list)
    to: list[EnvelopeAddress] = field(default_factory=list)
    cc: list[EnvelopeAddress] = field(default_factory=list)
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


def read_envelope(data: bytes) -> EnvelopeFields:
    """The fields of a stored ENVELOPE; empty fields if the bytes are not one."""
    try:
        node, _ = _node(data, 0)
    except (ValueError, IndexError):
        return EnvelopeFields()
    if not isinstance(node, list) or len(node) < 10:
        return EnvelopeFields()
    return EnvelopeFields(
        subject=_text(node[1]),
        from_=_addresses(node[2]),
        to=_addresses(node[5]),
        cc=_addresses(node[6]),
        in_reply_to=_text(node[8]),
        message_id=_text(node[9]),
    )


def _text(node: Node) -> bytes | None:
    return node if isinstance(node, bytes) else None


def _addresses(node: Node) -> list[EnvelopeAddress]:
    """Mailboxes of an address list; group markers (host NIL) are left out."""
    out: list[EnvelopeAddress] = []
    if not isinstance(node, list):
        return out
    for item in node:
        if isinstance(item, list) and len(item) == 4 and item[3] is not None:
            out.append(EnvelopeAddress(_text(item[0]), _text(item[2]), _text(item[3])))
    return out


def _skip_space(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in b" \r\n":
        pos += 1
    return pos


def _node(data: bytes, pos: int) -> tuple[Node, int]:
    """One list, quoted string, literal or NIL at `pos`; raises ValueError if none."""
    pos = _skip_space(data, pos)
    ch = data[pos : pos + 1]
    if ch == b"(":
        items: list[Node] = []
        pos += 1
        while True:
            pos = _skip_space(data, pos)
            if data[pos : pos + 1] == b")":
                return items, pos + 1
            item, pos = _node(data, pos)
            items.append(item)
    if ch == b'"':
        out = bytearray()
        pos += 1
        while True:
            c = data[pos]
            if c == 0x5C:  # backslash: the next byte is literal
                out.append(data[pos + 1])
                pos += 2
            elif c == 0x22:
                return bytes(out), pos + 1
            else:
                out.append(c)
                pos += 1
    if ch == b"{":
        end = data.index(b"}", pos)
        size = int(data[pos + 1 : end])
        start = end + 3  # "}\r\n"
        if start + size > len(data):
            raise ValueError("short literal")
        return data[start : start + size], start + size
    if data[pos : pos + 3].upper() == b"NIL":
        return None, pos + 3
    raise ValueError("not an envelope item")
