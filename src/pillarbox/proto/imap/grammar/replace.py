"""Parse functions of REPLACE and UID REPLACE (RFC 8508 §6):

``replace = "REPLACE" SP seq-number SP mailbox append-message`` and ``"UID" SP replace``,
where append-message is APPEND's (flags, date-time, literal or literal8, UTF8 form, or
CATENATE parts: a server with both extensions takes them, RFC 8508 on CATENATE).
"""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import MAX_NZ
from pillarbox.proto.imap.grammar.messages import append_message
from pillarbox.proto.imap.grammar.reader import CommandParser, Reader


def _parse_replace(r: Reader, tag: str, uid: bool) -> c.Replace:
    r.sp()
    number: int | None = None
    if r.peek() == ord("*"):
        r.pos += 1
    else:
        number = r.number(MAX_NZ, nonzero=True)
    r.sp()
    mailbox = r.mailbox()
    message = append_message(r, allow_catenate=True)  # RFC 8508 with CATENATE (RFC 4469)
    r.end()
    return c.Replace(tag, uid, number, mailbox, message)


PARSERS: Final[dict[str, CommandParser]] = {
    "REPLACE": lambda r, t: _parse_replace(r, t, False),
    "UID REPLACE": lambda r, t: _parse_replace(r, t, True),
}
