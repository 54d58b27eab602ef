"""Parse function of CANCELUPDATE (RFC 5267 §5: ``command-select =/ "CANCELUPDATE"
1*(SP quoted)``): one or more quoted tags, nothing else (an atom is refused)."""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import DQUOTE, SP
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader


def _parse_cancelupdate(r: Reader, tag: str) -> c.CancelUpdate:
    tags: list[str] = []
    while r.peek() == SP:
        r.pos += 1
        if r.peek() != DQUOTE:
            raise ParseError("Expected a quoted tag")
        tags.append(r.text(r.quoted(), "Tag"))
    if not tags:
        raise ParseError("Missing argument")
    r.end()
    return c.CancelUpdate(tag, tuple(tags))


PARSERS: Final[dict[str, CommandParser]] = {"CANCELUPDATE": _parse_cancelupdate}
