"""Parse function of COMPRESS (RFC 4978 §5: ``compress = "COMPRESS" SP algorithm``,
``algorithm = "DEFLATE"``; other atoms parse, for the server to refuse by name)."""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.reader import CommandParser, Reader


def _parse_compress(r: Reader, tag: str) -> c.Compress:
    r.sp()
    mechanism = r.upper_atom("compression mechanism")
    r.end()
    return c.Compress(tag, mechanism)


PARSERS: Final[dict[str, CommandParser]] = {"COMPRESS": _parse_compress}
