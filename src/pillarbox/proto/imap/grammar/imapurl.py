"""IMAP URLs naming a message or a part of one (RFC 5092), as CATENATE uses them.

CATENATE (RFC 4469 §5) takes URLs "relative to the server": an absolute path
``/mailbox[;UIDVALIDITY=v]/;UID=u[/;SECTION=s][/;PARTIAL=o[.l]]``. Only that form is read
here; anything else (another server's ``imap://`` URL, URLAUTH, a search or list URL) is
`BadUrl`, which the server answers with ``NO [BADURL url]``.

Must not: look anything up (the mailbox name is returned in store form, unchecked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import DIGIT
from pillarbox.proto.imap.grammar.fetch import _section_part, _section_text
from pillarbox.proto.imap.grammar.reader import ParseError, Reader

MAX_NUMBER: Final = 2**32 - 1  # RFC 9051 nz-number / RFC 5092 partial-range parts


class BadUrl(ValueError):
    """The URL is not a relative IMAP URL naming a message or one of its parts."""


@dataclass(frozen=True, slots=True)
class MessageUrl:
    """What a message-part URL names (RFC 5092 §6 imessagepart)."""

    mailbox: str
    uidvalidity: int | None
    uid: int
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int | None] | None = None


# RFC 5092 §11: iuid = "/;UID=" nz-number, isection, ipartial; percent-encoding decoded
# after splitting, so an encoded "/" or ";" inside the mailbox name stays part of it.
_URL = re.compile(
    r"/(?P<mailbox>[^;/]+)(?:;UIDVALIDITY=(?P<uidvalidity>[0-9]+))?"
    r"/;UID=(?P<uid>[0-9]+)"
    r"(?:/;SECTION=(?P<section>[^/;]+))?"
    r"(?:/;PARTIAL=(?P<origin>[0-9]+)(?:\.(?P<length>[0-9]+))?)?",
    re.IGNORECASE,
)


def _number(text: str, *, nonzero: bool) -> int:
    value = int(text)
    if value > MAX_NUMBER or (nonzero and value == 0) or (len(text) > 1 and text[0] == "0"):
        raise BadUrl("Invalid number")
    return value


def _decoded(text: str) -> bytes:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise BadUrl("Invalid percent-encoding")
    return unquote_to_bytes(text)


def _section(raw: bytes) -> tuple[tuple[int, ...], c.SectionKind, tuple[str, ...]]:
    """section-text as in FETCH BODY[...] (RFC 5092 §6: enc-section)."""
    r = Reader(raw, utf8=True, max_depth=2)
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    try:
        if DIGIT[r.peek()]:
            part = _section_part(r)
            if r.peek() == ord("."):
                r.pos += 1
                kind, fields = _section_text(r, allow_mime=True)
        else:
            kind, fields = _section_text(r, allow_mime=False)
        r.end()
    except ParseError as exc:
        raise BadUrl("Invalid section") from exc
    return part, kind, fields


def parse_message_url(url: str) -> MessageUrl:
    """The message (part) a relative IMAP URL names; BadUrl for anything else."""
    found = _URL.fullmatch(url)
    if found is None:
        raise BadUrl("Not a relative IMAP message URL")
    try:
        mailbox = _decoded(found["mailbox"]).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl("Mailbox name is not UTF-8") from None
    uidvalidity = found["uidvalidity"]
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    if found["section"] is not None:
        part, kind, fields = _section(_decoded(found["section"]))
    partial: tuple[int, int | None] | None = None
    if found["origin"] is not None:
        length = found["length"]
        partial = (
            _number(found["origin"], nonzero=False),
            None if length is None else _number(length, nonzero=True),
        )
    return MessageUrl(
        mailbox,
        None if uidvalidity is None else _number(uidvalidity, nonzero=True),
        _number(found["uid"], nonzero=True),
        part,
        kind,
        fields,
        partial,
    )
