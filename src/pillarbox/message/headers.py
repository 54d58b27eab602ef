"""Header blocks: finding fields and their byte spans, unfolding, HEADER.FIELDS.

Owns the RFC 5322 §2.2 header grammar as real mail uses it: CRLF or bare LF line ends,
folded lines, obsolete whitespace before the colon (RFC 5322 §4.5), 8-bit bytes, and a
header that stops at the first line that is not a field (as Python's `email` and
Dovecot do). Works on bytes with offsets into the stored message and never copies the
body. It must not decode values for the wire: IMAP sends header bytes as they are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

# RFC 5322 §3.6.8: ftext is printable US-ASCII except ":".
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE_BREAKS = re.compile(rb"[\r\n]+")


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: lower-case name, raw value and its byte span in the message.

    `value` is everything after the colon, folding and line end included; `start:end`
    covers the whole field (name to line end), which is what HEADER.FIELDS returns.
    """

    name: str
    value: bytes
    start: int
    end: int


def scan_header(data: bytes, start: int = 0, end: int | None = None) -> tuple[list[Field], int]:
    """Split the header that begins at `start`; return its fields and the body offset.

    The header ends after the first empty line (which belongs to the header, as IMAP
    BODY[HEADER] includes it), or at the first line that is neither a field nor a
    continuation (RFC 5322 has no such line: the body is taken to start there), or at
    `end`.
    """
    if end is None:
        end = len(data)
    fields: list[Field] = []
    pos = start
    cur_name = ""
    cur_start = -1
    cur_colon = -1
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        first = data[pos]
        if first == 0x0A or (first == 0x0D and line_end - pos == 2 and nl >= 0):
            # The empty line: end of the header.
            if cur_start >= 0:
                fields.append(Field(cur_name, data[cur_colon + 1 : pos], cur_start, pos))
            return fields, line_end
        if first in (0x20, 0x09):
            if cur_start < 0:
                # A continuation with nothing to continue: not a header at all.
                return fields, pos
            pos = line_end
            continue
        colon = data.find(b":", pos, line_end)
        name = data[pos:colon].rstrip(b" \t") if colon > pos else b""
        if not name or _FIELD_NAME.fullmatch(name) is None:
            if cur_start >= 0:
                fields.append(Field(cur_name, data[cur_colon + 1 : pos], cur_start, pos))
            return fields, pos
        if cur_start >= 0:
            fields.append(Field(cur_name, data[cur_colon + 1 : pos], cur_start, pos))
        cur_name = name.decode("ascii").lower()
        cur_start = pos
        cur_colon = colon
        pos = line_end
    if cur_start >= 0:
        fields.append(Field(cur_name, data[cur_colon + 1 : end], cur_start, end))
    return fields, end


def header_end(data: bytes) -> int:
    """Offset where the body of `data` begins (len(data) when there is no body)."""
    return scan_header(data)[1]


def unfold(value: bytes) -> bytes:
    """RFC 5322 §2.2.3 unfolding plus trimming: the field value as one line of bytes.

    Any stray CR or LF left after unfolding (a bare CR, say) becomes a space, so the
    result can always be sent in a quoted string or literal.
    """
    if b"\n" in value or b"\r" in value:
        value = _FOLD.sub(b"", value)
        value = _LINE_BREAKS.sub(b" ", value)
    return value.strip(b" \t\r\n")


def first_value(fields: Sequence[Field], name: str) -> bytes | None:
    """The unfolded value of the first field called `name` (lower-case), or None."""
    for field in fields:
        if field.name == name:
            return unfold(field.value)
    return None


def get_header(data: bytes | str, name: str) -> str | None:
    """The first `name` field of a message or header block, unfolded but not decoded.

    Encoded-words stay as they are; bytes that are not UTF-8 become U+FFFD (this is for
    inspection, e.g. by the submission service, not for re-sending).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fields, _ = scan_header(raw)
    value = first_value(fields, name.lower())
    return None if value is None else value.decode("utf-8", errors="replace")


# One field of a header block: its name (ftext, RFC 5322 §3.6.8), optional obsolete
# whitespace before the colon (RFC 5322 §4.5), the rest of the line and every
# continuation line after it (RFC 5322 §2.2.3). Matching this from the block's start
# splits it exactly as `scan_header` does (the first line that does not match ends the
# header there), in C rather than a Python step per line.
_FIELD_LINES = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?")


@functools.lru_cache(maxsize=256)
def _wanted(names: tuple[str, ...]) -> frozenset[bytes]:
    """The names to match, as bytes: the same for every message of a FETCH. A non-ASCII
    name's UTF-8 never matches ftext, as its str never matched an ASCII field name."""
    return frozenset(n.lower().encode("utf-8") for n in names)


def header_fields(header_block: bytes, names: Sequence[str], exclude: bool) -> bytes:
    """BODY[HEADER.FIELDS (names)] or, with `exclude`, BODY[HEADER.FIELDS.NOT (names)].

    RFC 9051 §6.4.5: the matching fields keep their original bytes, folding included,
    and the result ends with the blank line that ends a header. Names match without
    regard to case. The blank line uses the block's own line ending (CRLF by default).

    Fields are found with `_FIELD_LINES` (the same split as `scan_header`, which
    tests/message/test_headers_fields.py checks): this runs for every message of a
    FETCH of header fields, the commonest FETCH a mail client sends.
    """
    wanted = _wanted(tuple(names))
    eol = b"\n" if b"\n" in header_block and b"\r\n" not in header_block else b"\r\n"
    out: list[bytes] = []
    match = _FIELD_LINES.match
    pos = 0
    while (found := match(header_block, pos)) is not None:
        end = found.end()
        if (found.group(1).lower() in wanted) != exclude:
            raw = header_block[pos:end]
            if not raw.endswith(b"\n"):
                raw += eol
            out.append(raw)
        if end == pos:  # cannot happen (a match holds at least "x:"), but never loop
            break
        pos = end
    out.append(eol)
    return b"".join(out)
