"""Parse functions of the commands that add, change, copy or remove messages.

APPEND with MULTIAPPEND, literal8 and UTF8 (RFC 9051 §6.3.12, RFC 3502, RFC 3516,
RFC 6855 §4), STORE with UNCHANGEDSINCE (RFC 9051 §6.4.6, RFC 7162 §3.1.3), COPY
(RFC 9051 §6.4.7), MOVE (RFC 6851), EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE
(RFC 4315), each in its plain and UID form where it has one.
"""

from __future__ import annotations

import datetime
from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar import dates
from pillarbox.proto.imap.grammar.chars import (
    DQUOTE,
    FETCH_NAME_CHAR,
    LPAREN,
    MAX_MODSEQ,
    SP,
    TILDE,
)
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader, no_arguments


def _parse_append(r: Reader, tag: str) -> c.Append:
    # RFC 9051 §6.3.12, RFC 3502 (MULTIAPPEND), RFC 3516 (literal8), RFC 6855 §4 (UTF8)
    r.sp()
    mailbox = r.mailbox()
    messages: list[c.AppendMessage] = []
    while not r.at_end():
        messages.append(append_message(r, allow_catenate=True))
    if not messages:
        raise ParseError("Missing message")
    return c.Append(tag, mailbox, tuple(messages))


def append_message(r: Reader, *, allow_catenate: bool = False) -> c.AppendMessage:
    """SP [flag-list SP] [date-time SP] (literal / literal8 / "UTF8" SP "(" literal8 ")"):
    one message of APPEND, and the message of REPLACE (RFC 8508 §6); with
    `allow_catenate` also "CATENATE" SP "(" cat-part *(SP cat-part) ")" (RFC 4469 §5)."""
    r.sp()
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    if r.peek() == LPAREN:
        flags = r.flag_list()
        r.sp()
    if r.peek() == DQUOTE:
        date = dates.date_time(r)
        r.sp()
    utf8 = False
    if allow_catenate and r.accept(b"CATENATE"):
        return c.AppendMessage(flags, date, b"", catenate=_cat_parts(r))
    if r.accept(b"UTF8"):
        r.sp()
        r.open_paren()
        if r.peek() != TILDE:
            raise ParseError("UTF8 data must be a binary literal")
        data, binary = r.literal(allow_binary=True)
        r.close_paren()
        utf8 = True
    else:
        data, binary = r.literal(allow_binary=True)
    return c.AppendMessage(flags, date, data, binary, utf8)


def _cat_parts(r: Reader) -> tuple[c.CatPart, ...]:
    # RFC 4469 §5: cat-part = text-literal / url; text-literal = "TEXT" SP literal;
    # url = "URL" SP astring
    r.sp()
    r.open_paren()
    parts: list[c.CatPart] = []
    while True:
        if r.accept(b"TEXT"):
            r.sp()
            if r.peek() == TILDE:
                raise ParseError("CATENATE TEXT must be a literal")
            parts.append(c.CatText(r.literal(allow_nul=True)[0]))
        elif r.accept(b"URL"):
            r.sp()
            parts.append(c.CatUrl(r.text(r.astring(), "URL")))
        else:
            raise ParseError("Expected TEXT or URL")
        if r.peek() != SP:
            break
        r.pos += 1
    r.close_paren()
    return tuple(parts)


def _parse_store(r: Reader, tag: str, uid: bool) -> c.Store:
    # RFC 9051 §6.4.6, RFC 7162 §3.1.3 (UNCHANGEDSINCE)
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    unchanged_since: int | None = None
    if r.peek() == LPAREN:
        r.open_paren()
        r.expect(b"UNCHANGEDSINCE")
        r.sp()
        unchanged_since = r.number(MAX_MODSEQ)
        r.close_paren()
        r.sp()
    mode: c.StoreMode = "replace"
    if r.peek() == ord("+"):
        mode = "add"
        r.pos += 1
    elif r.peek() == ord("-"):
        mode = "remove"
        r.pos += 1
    word = r.run(FETCH_NAME_CHAR).upper()
    if word == b"FLAGS":
        silent = False
    elif word == b"FLAGS.SILENT":
        silent = True
    else:
        raise ParseError("Expected FLAGS")
    r.sp()
    if r.peek() == LPAREN:
        flags = r.flag_list()
    else:
        fl = [r.flag()]
        while r.maybe_sp():
            fl.append(r.flag())
        flags = tuple(fl)
    r.end()
    return c.Store(tag, uid, seqset, mode, silent, flags, unchanged_since)


def _parse_copy_move(r: Reader, tag: str, uid: bool, cls: type[c.Copy] | type[c.Move]) -> c.Command:
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return cls(tag, uid, seqset, mailbox)


def _parse_uid_expunge(r: Reader, tag: str) -> c.UidExpunge:
    r.sp()
    seqset = r.sequence_set()
    r.end()
    return c.UidExpunge(tag, seqset)


PARSERS: Final[dict[str, CommandParser]] = {
    "EXPUNGE": no_arguments(c.Expunge),
    "APPEND": _parse_append,
    "STORE": lambda r, t: _parse_store(r, t, False),
    "COPY": lambda r, t: _parse_copy_move(r, t, False, c.Copy),
    "MOVE": lambda r, t: _parse_copy_move(r, t, False, c.Move),
    "UID STORE": lambda r, t: _parse_store(r, t, True),
    "UID COPY": lambda r, t: _parse_copy_move(r, t, True, c.Copy),
    "UID MOVE": lambda r, t: _parse_copy_move(r, t, True, c.Move),
    "UID EXPUNGE": _parse_uid_expunge,
}
