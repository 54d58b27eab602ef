"""The MIME walker: one pass over the stored bytes that records every entity's offsets.

Owns the part tree of RFC 2045/2046 (multipart, RFC 2046 §5.1) and RFC 2046 §5.2
(message/rfc822; RFC 6532 §3.5 message/global), with the byte offsets IMAP needs to
serve BODY[section] from the message file without parsing again (RFC 9051 §6.4.5), and
the JSON form of those offsets that the store keeps.

Theory of operation: an entity is a header [h, b) followed by a body [b, e). A multipart
body is cut at its delimiter lines, found with `bytes.find` (the CRLF before a delimiter
belongs to the delimiter, RFC 2046 §5.1.1), and each piece is walked as an entity; the
body of a message/rfc822 part is walked as a message. Bodies are never copied, decoded
or scanned line by line, so a 50 MB base64 attachment costs a few `find` calls.

Malformed input never raises; the walker repairs as Dovecot does and notes a defect:
no boundary parameter makes the part text/plain (RFC 2045 §5.2 default for an invalid
Content-Type), a missing close delimiter ends the last part at the end of its parent,
a multipart with no delimiter gets one empty text/plain child (the grammar needs one),
and past `MAX_DEPTH` or `MAX_PARTS` a container is kept opaque (application/octet-stream
in BODYSTRUCTURE; its raw body is indexed as flat text by `message.text`, so nesting
hides nothing from SEARCH). The same limits hold at delivery, in BODYSTRUCTURE and in
the text index, since all three come from this one walk. It must not decode transfer
encodings or charsets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pillarbox.message.headers import Field, first_value, scan_header
from pillarbox.message.mime import Params, param, parse_content_type, parse_transfer_encoding

MAX_DEPTH = 64  # nested multipart/message levels (Dovecot caps at 100)
MAX_PARTS = 10_000  # entities per message; beyond that containers stay opaque
# A header block (the message's, or any part's) that IMAP APPEND accepts: FETCH reads
# HEADER, HEADER.FIELDS and MIME whole, so their size must be bounded where mail enters.
# The same as the SMTP default (`[smtp] max_header_size`).
MAX_HEADER_SIZE = 1024 * 1024

# RFC 2045 §6.2: only these may wrap a multipart or message/rfc822 body (RFC 2046 §5.2.1).
IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
MESSAGE_SUBTYPES = frozenset({"rfc822", "global"})
TEXT_PLAIN_DEFAULT: tuple[str, str, Params] = ("text", "plain", [("charset", "us-ascii")])


@dataclass(slots=True)
class Entity:
    """One MIME entity: header [h, b) and body [b, e) as offsets into the message.

    `children` is set for a multipart, `message` for a message/rfc822 (or global) part
    whose body was walked as a message. `opaque` marks a container we did not descend
    into; BODYSTRUCTURE then calls it application/octet-stream.
    """

    h: int
    b: int
    e: int
    fields: list[Field]
    type: str
    subtype: str
    params: Params
    cte: str
    children: list[Entity] | None = None
    message: Entity | None = None
    opaque: bool = False

    @property
    def mime_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    def header(self, name: str) -> bytes | None:
        """Unfolded value of the first field `name` (lower-case) of this entity."""
        return first_value(self.fields, name)


class _Walker:
    __slots__ = ("count", "data", "defects")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = 0
        self.defects: list[str] = []

    def entity(self, h: int, e: int, depth: int, digest_child: bool) -> Entity:
        data = self.data
        self.count += 1
        fields, b = scan_header(data, h, e)
        raw_type = first_value(fields, "content-type")
        parsed = parse_content_type(raw_type) if raw_type is not None else None
        if parsed is None:
            if raw_type is not None:
                self.defects.append(f"invalid Content-Type at {h}")
            if digest_child:
                # RFC 2046 §5.1.5: in a digest the default is message/rfc822.
                parsed = ("message", "rfc822", [])
            else:
                parsed = (TEXT_PLAIN_DEFAULT[0], TEXT_PLAIN_DEFAULT[1], [])
        mtype, subtype, params = parsed
        if mtype == "text" and param(params, "charset") is None:
            # RFC 2046 §4.1.2: US-ASCII is the default charset; report it explicitly.
            params = [*params, ("charset", "us-ascii")]
        cte = parse_transfer_encoding(first_value(fields, "content-transfer-encoding"))
        ent = Entity(h, b, e, fields, mtype, subtype, params, cte)
        if mtype == "multipart":
            boundary = param(params, "boundary")
            if not boundary:
                self.defects.append(f"multipart without boundary at {h}")
                ent.type, ent.subtype, ent.params = TEXT_PLAIN_DEFAULT
                ent.params = list(ent.params)
            elif depth >= MAX_DEPTH or self.count >= MAX_PARTS:
                self.defects.append(f"multipart too deep or too many parts at {h}")
                ent.opaque = True
            else:
                ent.children = self.multipart(b, e, boundary, depth + 1, subtype == "digest")
        elif mtype == "message" and subtype in MESSAGE_SUBTYPES:
            if cte not in IDENTITY_ENCODINGS:
                self.defects.append(f"encoded message/{subtype} at {h}")
                ent.opaque = True
            elif depth >= MAX_DEPTH or self.count >= MAX_PARTS:
                self.defects.append(f"message too deep or too many parts at {h}")
                ent.opaque = True
            else:
                ent.message = self.entity(b, e, depth + 1, False)
        return ent

    def multipart(
        self, start: int, end: int, boundary: str, depth: int, digest: bool
    ) -> list[Entity]:
        data = self.data
        marker = b"--" + boundary.encode("latin-1")
        needle = b"\n" + marker
        # Delimiter lines as (line start, close?, start of the next line).
        delimiters: list[tuple[int, bool, int]] = []
        pos = start
        closed = False
        while True:
            if pos == start and data.startswith(marker, start, end):
                line = start
            else:
                hit = data.find(needle, pos, end)
                if hit < 0:
                    break
                line = hit + 1
            k = line + len(marker)
            close = data.startswith(b"--", k, end)
            if close:
                k += 2
            while k < end and data[k] in (0x20, 0x09):  # RFC 2046 §5.1.1 transport padding
                k += 1
            if k >= end:
                after = end
            elif data[k] == 0x0A:
                after = k + 1
            elif data[k] == 0x0D and (k + 1 >= end or data[k + 1] == 0x0A):
                after = min(k + 2, end)
            else:
                pos = line  # "--boundary" followed by other text: not a delimiter
                if pos == start:
                    pos += 1
                continue
            delimiters.append((line, close, after))
            if close:
                closed = True
                break
            if after >= end:
                break
            pos = after - 1  # the next delimiter's "\n" is this line's end
        if not delimiters:
            self.defects.append(f"no multipart delimiter at {start}")
            params: Params = [("charset", "us-ascii")]
            return [Entity(end, end, end, [], "text", "plain", params, "7bit")]
        if not closed:
            self.defects.append(f"multipart not closed at {start}")
        children: list[Entity] = []
        for index, (_line, close, after) in enumerate(delimiters):
            if close:
                break
            if index + 1 < len(delimiters):
                next_line = delimiters[index + 1][0]
                part_end = next_line - 1
                if part_end > after and data[part_end - 1] == 0x0D:
                    part_end -= 1
                part_end = max(part_end, after)
            else:
                part_end = end
            if self.count >= MAX_PARTS:
                self.defects.append(f"too many parts at {after}")
                break
            children.append(self.entity(after, part_end, depth, digest))
        if not children:
            # Only a close delimiter: the grammar still needs one body part.
            params = [("charset", "us-ascii")]
            children.append(Entity(end, end, end, [], "text", "plain", params, "7bit"))
        return children


def walk(data: bytes) -> tuple[Entity, list[str]]:
    """Walk a whole message; return its root entity and the defects found."""
    walker = _Walker(data)
    root = walker.entity(0, len(data), 0, False)
    return root, walker.defects


# --- the stored JSON form -------------------------------------------------------------
# {"v": 1, "p": node}; node = {"h": int, "b": int, "e": int, "t": "type/subtype",
# "cte": str, "c": [node, ...] (multipart), "m": node (message/rfc822 body)}.

PARTS_VERSION = 1


def _node(ent: Entity) -> dict[str, object]:
    node: dict[str, object] = {
        "h": ent.h,
        "b": ent.b,
        "e": ent.e,
        "t": "application/octet-stream" if ent.opaque else ent.mime_type,
        "cte": ent.cte,
    }
    if ent.children is not None:
        node["c"] = [_node(child) for child in ent.children]
    if ent.message is not None:
        node["m"] = _node(ent.message)
    return node


def parts_json(root: Entity) -> str:
    """The part tree with byte offsets, as compact JSON for `MessageMeta.parts`."""
    return json.dumps({"v": PARTS_VERSION, "p": _node(root)}, separators=(",", ":"))
