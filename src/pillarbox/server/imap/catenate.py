"""CATENATE (RFC 4469): the message of an APPEND joined from TEXT literals and URL parts.

A URL part names a message or a section of one in a mailbox of the same account
(relative IMAP URL, RFC 5092); its bytes are what FETCH BODY[section] would answer, read
from the recorded part offsets (`services.fetching.read_section`). A URL that does not
parse, names another account's or an unknown mailbox, a UIDVALIDITY that no longer
holds, or a message or part that does not exist is ``NO [BADURL url]`` (§5); a TEXT part
with NUL is NO (a plain literal may not carry one, RFC 9051 §4.3); the joined message
must fit the literal limit (``NO [TOOBIG]``) like any appended message.

The parts are joined in memory: the message is parsed once from its bytes before it is
stored (`AccountMailboxes.append`), so it is held once anyway, bounded by
`max_literal_size`.

Must not: read a mailbox outside the account (names are looked up with
`AccountMailboxes.find`, which only sees the logged-in account's).
"""

from __future__ import annotations

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.imapurl import BadUrl, parse_message_url
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.session import Session
from pillarbox.services.fetching import Section, read_section
from pillarbox.services.mailbox import AccountMailboxes, NoSuchMailbox

# RFC 5092 ipartial without a length: the rest of the section.
_REST = 1 << 62


def _bad_url(url: str) -> CommandNo:
    # RFC 4469 §6: "BADURL" SP url-resp-text, 1*(%x01-09 / %x0B-0C / %x0E-5C / %x5E-7F):
    # a URL that cannot be written so (a "]", CR, LF, non-ASCII) leaves the code bare.
    safe = url if url and all(0 < ord(ch) < 0x80 and ch not in "]\r\n" for ch in url) else ""
    return CommandNo("Invalid URL in CATENATE", f"BADURL {safe}".rstrip())


async def _url_bytes(mbx: AccountMailboxes, url: str) -> bytes:
    try:
        target = parse_message_url(url)
    except BadUrl:
        raise _bad_url(url) from None
    try:
        mailbox = await mbx.find(target.mailbox)
    except NoSuchMailbox:
        mailbox = None
    if mailbox is None or (
        target.uidvalidity is not None and target.uidvalidity != mailbox.uidvalidity
    ):
        raise _bad_url(url)
    partial = None
    if target.partial is not None:
        origin, length = target.partial
        partial = (origin, _REST if length is None else length)
    section = Section(target.part, target.kind, target.fields, partial)
    data = await read_section(mbx.store, mailbox.id, target.uid, section)
    if data is None:
        raise _bad_url(url)
    return data


async def catenated(s: Session, mbx: AccountMailboxes, parts: tuple[c.CatPart, ...]) -> bytes:
    """The message the CATENATE parts make, in order (RFC 4469 §5)."""
    limit = s.config.max_literal_size
    out = bytearray()
    for part in parts:
        if isinstance(part, c.CatText):
            if b"\x00" in part.data:
                raise CommandNo("NUL in CATENATE TEXT part")
            out += part.data
        else:
            out += await _url_bytes(mbx, part.url)
        if len(out) > limit:
            raise CommandNo("Message too large", "TOOBIG")
    return bytes(out)
