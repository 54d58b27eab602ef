"""Search text and preview: the decoded words of a message's text parts.

Owns which parts count as text (text/plain and text/html, including those of attached
messages; in a multipart/alternative only the text/plain choices when there are any, as
they say the same thing), how they are decoded (transfer encoding, then charset with
fallbacks), how HTML becomes text, and the caps that keep a huge message cheap. The
preview follows RFC 8970 §3.1: plain text, whitespace collapsed, at most 200 characters.

It must never raise and never decode non-text parts (attachments stay untouched).
"""

from __future__ import annotations

import html
import re

from pillarbox.message.charsets import decode_bytes
from pillarbox.message.mime import param
from pillarbox.message.parts import IDENTITY_ENCODINGS, Entity
from pillarbox.message.transfer import decode_base64, decode_quoted_printable

TEXT_CAP = 1 << 20  # characters of body text kept for full-text search
PREVIEW_LENGTH = 200  # RFC 8970 §3.1 asks for at most 256; 200 reads well in a list

_HIDDEN_OPEN = re.compile(r"<(script|style|head|title)\b", re.IGNORECASE)
_HIDDEN_NAMES = ("script", "style", "head", "title")
_HIDDEN_CLOSE = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in _HIDDEN_NAMES}
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?table|/?blockquote)\b[^<>]*>", re.I)
_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_NEWLINES = re.compile(r"\n\s*\n\s*")
_ALL_WHITESPACE = re.compile(r"\s+")


def html_to_text(markup: str) -> str:
    """Text of an HTML body: hidden elements and comments dropped, tags removed.

    Uses `find` and tag patterns that cannot backtrack, so hostile markup stays linear.
    """
    pieces: list[str] = []
    pos = 0
    n = len(markup)
    # The next comment and hidden element are searched again only once `pos` passes
    # them, so each search scans any stretch of the markup at most once.
    comment = markup.find("<!--")
    hidden = _HIDDEN_OPEN.search(markup)
    while pos < n:
        if 0 <= comment < pos:
            comment = markup.find("<!--", pos)
        if hidden is not None and hidden.start() < pos:
            hidden = _HIDDEN_OPEN.search(markup, pos)
        if comment < 0 and hidden is None:
            pieces.append(markup[pos:])
            break
        if hidden is None or (0 <= comment < hidden.start()):
            pieces.append(markup[pos:comment])
            close = markup.find("-->", comment + 4)
            pos = n if close < 0 else close + 3
        else:
            pieces.append(markup[pos : hidden.start()])
            end = _HIDDEN_CLOSE[hidden.group(1).lower()].search(markup, hidden.end())
            pos = n if end is None else end.end()
    text = "".join(pieces)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    return _NEWLINES.sub("\n", text).strip()


def _text_parts(ent: Entity, out: list[Entity]) -> None:
    """The entities whose text is indexed, in order: text parts, and containers kept
    opaque past the parser's depth or part limits (`parts.MAX_DEPTH`, `MAX_PARTS`),
    whose raw body is indexed as flat text, so nothing can be hidden by nesting."""
    if ent.opaque and ent.type in ("multipart", "message"):
        if ent.cte in IDENTITY_ENCODINGS:  # not an (invalid) encoded message/rfc822
            out.append(ent)
    elif ent.children is not None:
        children = ent.children
        if ent.subtype == "alternative":
            plain = [c for c in children if c.type == "text" and c.subtype == "plain"]
            if plain:
                children = plain
        for child in children:
            _text_parts(child, out)
    elif ent.message is not None:
        _text_parts(ent.message, out)
    elif ent.type == "text" and ent.subtype in ("plain", "html") and not ent.opaque:
        out.append(ent)


def part_text(data: bytes, ent: Entity, limit: int) -> str:
    """Decoded text of one text part, at most `limit` characters (roughly); an opaque
    container's raw body, as it is (boundaries and headers included)."""
    if ent.opaque:
        raw = data[ent.b : min(ent.e, ent.b + limit * 4)]
        return raw.decode("utf-8", "replace")[:limit]
    # Enough encoded bytes for `limit` characters: 4 bytes a character, 4/3 for base64,
    # and room for markup in HTML.
    budget = limit * (16 if ent.subtype == "html" else 6) + 1024
    raw = data[ent.b : min(ent.e, ent.b + budget)]
    if ent.cte == "base64":
        raw = decode_base64(raw)
    elif ent.cte == "quoted-printable":
        raw = decode_quoted_printable(raw)
    text = decode_bytes(raw, param(ent.params, "charset"))
    if ent.subtype == "html":
        text = html_to_text(text)
    return text[:limit]


def body_text(data: bytes, root: Entity, cap: int = TEXT_CAP) -> str:
    """Decoded text of the message's text parts, joined by blank lines, capped."""
    parts: list[Entity] = []
    _text_parts(root, parts)
    out: list[str] = []
    remaining = cap
    for ent in parts:
        if remaining <= 0:
            break
        try:
            text = part_text(data, ent, remaining)
        except Exception:  # never let one odd part keep a message out of the store
            continue
        text = text.strip()
        if text:
            out.append(text)
            remaining -= len(text) + 2
    joined = "\n\n".join(out)
    return joined[:cap]


def preview(text: str, length: int = PREVIEW_LENGTH) -> str:
    """RFC 8970 §3.1 preview: whitespace collapsed to single spaces, `length` characters."""
    head = text[: length * 8]
    return _ALL_WHITESPACE.sub(" ", head).strip()[:length].rstrip()
