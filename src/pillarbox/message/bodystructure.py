"""BODYSTRUCTURE and BODY: the RFC 9051 §7.5.2 structure of a message, as IMAP bytes.

Owns the field order and defaults of body-type-1part / body-type-mpart (RFC 9051 §9):
parameters, id, description, encoding, octets, lines for text and message parts, the
encapsulated ENVELOPE and structure for message/rfc822 and message/global, and the
extension data (md5 always NIL, disposition, language, location) for BODYSTRUCTURE.
Types, subtypes, parameter names and encodings are sent lower-cased (they are
case-insensitive, RFC 2045 §5.1); values as they are in the message.

Octets are the body's size in the stored file and lines its count of LF characters, so
they agree with what BODY[section] serves. It must not look at anything but the parsed
`Entity` tree and the stored bytes.
"""

from __future__ import annotations

from pillarbox.message.envelope import envelope
from pillarbox.message.imapstr import NIL, nstring, string
from pillarbox.message.mime import Params, parse_disposition, parse_language
from pillarbox.message.parts import Entity


def _params(params: Params) -> bytes:
    """body-fld-param: ("name" "value" ...) or NIL."""
    if not params:
        return NIL
    items = []
    for name, value in params:
        items.append(string(name.encode("latin-1")))
        items.append(string(value.encode("latin-1")))
    return b"(" + b" ".join(items) + b")"


def _disposition(ent: Entity) -> bytes:
    """body-fld-dsp: ("type" params) or NIL (RFC 2183)."""
    raw = ent.header("content-disposition")
    parsed = parse_disposition(raw) if raw is not None else None
    if parsed is None:
        return NIL
    kind, params = parsed
    return b"(" + string(kind.encode("latin-1")) + b" " + _params(params) + b")"


def _language(ent: Entity) -> bytes:
    """body-fld-lang: a parenthesised list of tags (RFC 3282), or NIL."""
    raw = ent.header("content-language")
    tags = parse_language(raw) if raw is not None else []
    if not tags:
        return NIL
    return b"(" + b" ".join(string(t.encode("latin-1")) for t in tags) + b")"


def _extension(ent: Entity) -> bytes:
    """body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 2557 Content-Location)."""
    # RFC 2557 §4.4.1: a folded URI is unfolded by removing its whitespace.
    raw_location = ent.header("content-location")
    if raw_location is not None:
        raw_location = b"".join(raw_location.split())
    location = nstring(raw_location)
    return b"%s %s %s" % (_disposition(ent), _language(ent), location)


def structure(data: bytes, ent: Entity, extended: bool) -> bytes:
    """BODYSTRUCTURE (`extended`) or BODY of the entity `ent` of message `data`."""
    out: list[bytes] = []
    _write(data, ent, extended, out)
    return b"".join(out)


def _write(data: bytes, ent: Entity, extended: bool, out: list[bytes]) -> None:
    if ent.children is not None:
        out.append(b"(")
        for child in ent.children:
            _write(data, child, extended, out)
        out.append(b" ")
        out.append(string(ent.subtype.encode("latin-1")))
        if extended:
            # body-ext-mpart: params, then disposition, language, location.
            out.append(b" ")
            out.append(_params(ent.params))
            out.append(b" ")
            out.append(_extension(ent))
        out.append(b")")
        return
    if ent.opaque:
        mtype, subtype = b"application", b"octet-stream"
    else:
        mtype, subtype = ent.type.encode("latin-1"), ent.subtype.encode("latin-1")
    out.append(b"(")
    out.append(string(mtype))
    out.append(b" ")
    out.append(string(subtype))
    out.append(b" ")
    # body-fields: params, id, description, encoding, octets.
    out.append(_params(ent.params))
    out.append(b" ")
    out.append(nstring(ent.header("content-id")))
    out.append(b" ")
    out.append(nstring(ent.header("content-description")))
    out.append(b" ")
    out.append(string(ent.cte.encode("latin-1")))
    out.append(b" %d" % (ent.e - ent.b))
    if ent.message is not None:
        # body-type-msg: envelope, body, lines (RFC 9051 §7.5.2).
        out.append(b" ")
        out.append(envelope(ent.message.fields))
        out.append(b" ")
        _write(data, ent.message, extended, out)
        out.append(b" %d" % data.count(b"\n", ent.b, ent.e))
    elif ent.type == "text" and not ent.opaque:
        out.append(b" %d" % data.count(b"\n", ent.b, ent.e))
    if extended:
        # body-ext-1part: md5 (never computed), then disposition, language, location.
        out.append(b" NIL ")
        out.append(_extension(ent))
    out.append(b")")
