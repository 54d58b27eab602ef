"""BODY[section] and BINARY[section] from the stored part offsets, without re-parsing.

Owns RFC 9051 §6.4.5 section numbering over the JSON written by `parts.parts_json`:
part 1 of a non-multipart message is its body; a message/rfc822 (or message/global)
part's subparts are those of the message it encapsulates, and HEADER/TEXT apply to
that message; MIME is the part's own header. RFC 3516 BINARY needs the part's
transfer encoding, which `part_encoding` returns. It must not read message files.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pillarbox.message.transfer import UnknownTransferEncoding, decode_transfer

__all__ = [
    "UnknownTransferEncoding",
    "decode_transfer",
    "has_attachments",
    "largest_header",
    "part_encoding",
    "resolve",
    "section_range",
]

Node = dict[str, Any]
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@lru_cache(maxsize=512)
def _load(parts_json: str) -> Node:
    root: Node = json.loads(parts_json)["p"]
    return root


def resolve(parts_json: str, part: tuple[int, ...]) -> Node | None:
    """The node that section-part `part` names, or None if there is no such part.

    `()` is the whole message. Walking down: in a multipart, n picks the n-th child; in a
    message that is not multipart, only 1 exists and it is that message's body. Going
    below a message/rfc822 part continues in the message it encapsulates.
    """
    node: Node = _load(parts_json)
    container: Node | None = node  # where the next part number is looked up
    for number in part:
        if container is None or number < 1:
            return None
        children = container.get("c")
        if children is not None:
            if number > len(children):
                return None
            node = children[number - 1]
        else:
            if number != 1:
                return None
            node = container
        if "c" in node:
            container = node
        elif "m" in node:
            container = node["m"]
        else:
            container = None
    return node


def section_range(parts_json: str, part: tuple[int, ...], kind: str) -> tuple[int, int] | None:
    """Byte range [start, end) of BODY[part.kind] in the stored message, or None.

    kind "" is the part's body (for `()` the whole message), "MIME" the part's own
    header (not allowed for `()`), "HEADER"/"TEXT" the header/body of the message the
    part is (`()`) or encapsulates (a message/rfc822 part); anything else gives None.
    HEADER.FIELDS variants use the "HEADER" range and `headers.header_fields`.
    """
    node = resolve(parts_json, part)
    if node is None:
        return None
    kind = kind.upper()
    if kind == "":
        return (node["h"], node["e"]) if not part else (node["b"], node["e"])
    if kind == "MIME":
        return None if not part else (node["h"], node["b"])
    if kind in ("HEADER", "TEXT"):
        if part:
            inner = node.get("m")
            if inner is None:
                return None
            node = inner
        return (node["h"], node["b"]) if kind == "HEADER" else (node["b"], node["e"])
    return None


def largest_header(parts_json: str) -> int:
    """The size of the largest header block in the message: its own and every part's
    (the ranges HEADER and MIME read whole). One walk of the stored part tree."""
    largest = 0
    pending: list[Node] = [_load(parts_json)]
    while pending:
        node = pending.pop()
        largest = max(largest, node["b"] - node["h"])
        pending.extend(node.get("c", ()))
        if "m" in node:
            pending.append(node["m"])
    return largest


def has_attachments(parts_json: str) -> bool:
    """Whether the message carries an attachment, read from the stored part tree (no
    message bytes) for the list's mark: a part that is not text (a file, an image, a
    forwarded message), or any part of a multipart/mixed after its first (the body;
    RFC 2046 §5.1.3), text files included. The alternatives of a multipart/alternative
    are the body, and the parts of a multipart/related after its first are what its
    HTML shows inline (RFC 2387 §3)."""
    pending: list[Node] = [_load(parts_json)]
    while pending:
        node = pending.pop()
        kind = node.get("t", "")
        children = node.get("c")
        if children is None:
            if not kind.startswith("text/"):
                return True
        elif kind == "multipart/related":
            pending.extend(children[:1])
        elif kind == "multipart/alternative":
            pending.extend(children)
        elif len(children) > 1:
            return True
        else:
            pending.extend(children)
    return False


def part_encoding(parts_json: str, part: tuple[int, ...]) -> str | None:
    """Content-Transfer-Encoding of the part (lower-case), or None if there is no part."""
    node = resolve(parts_json, part)
    return None if node is None else str(node["cte"])
