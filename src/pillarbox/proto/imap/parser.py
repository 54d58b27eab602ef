"""The IMAP command grammar's front door: one framed command (bytes) in, one `commands` event out.

Theory of operation: `ServerConnection` frames a command (its lines and the literals they
announce, joined back with canonical CRLFs, the final CRLF removed) and calls
`parse_command`. It reads the tag and the command word ("UID FETCH" for UID commands),
looks the word up in one table and hands a `Reader` positioned after it to that command's
parse function. The parse functions live in `pillarbox.proto.imap.grammar`, one module per
command family (session, mailboxes, messages, fetch, search, as in
`pillarbox.proto.imap.commands`), each following the ABNF of RFC 9051 §9 and the extension
RFCs it names and exporting its commands as a `PARSERS` table. This module joins those
tables in one place, so the set of commands the server understands is read here, and a
name claimed by two families fails at import rather than shadowing one parser silently.

Errors raise `ParseError` with a short, client-safe message (never echoing client bytes);
the connection turns it into ``tag BAD <message>``. Nesting (parenthesised lists, NOT/OR
chains) is bounded by `max_depth` so no input can exhaust the Python stack.

Must not: do I/O, know about states, mailboxes or credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar import (
    compress,
    context,
    fetch,
    mailboxes,
    messages,
    notify,
    quota,
    replace,
    search,
    session,
    sort,
    unauthenticate,
)
from pillarbox.proto.imap.grammar.chars import ASTRING_CHAR, ATOM_CHAR, MONTHS, SP, TAG_CHAR
from pillarbox.proto.imap.grammar.reader import (
    CommandParser,
    ParseError,
    Reader,
    parse_sequence_set,
)
from pillarbox.proto.imap.grammar.session import decode_base64


def parse_tag(line: bytes) -> str | None:
    """The tag at the start of a command line, or None if there is no valid one."""
    end = 0
    n = len(line)
    while end < n and TAG_CHAR[line[end]]:
        end += 1
    if end == 0 or (end < n and line[end] != SP):
        return None
    return line[:end].decode("ascii")


def command_name(line: bytes) -> str | None:
    """The upper-cased command word after the tag ("UID FETCH" for UID commands), or None."""
    parts = line.split(b" ", 3)
    if len(parts) < 2:
        return None
    name = parts[1].rstrip(b"\r\n").upper()
    if name == b"UID" and len(parts) >= 3:
        name = b"UID " + parts[2].rstrip(b"\r\n").upper()
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        return None


def _join(*tables: Mapping[str, CommandParser]) -> dict[str, CommandParser]:
    """The families' tables as one; a command name claimed twice is a programming error."""
    joined: dict[str, CommandParser] = {}
    for table in tables:
        for name, parse in table.items():
            if name in joined:
                raise ValueError(f"IMAP command {name} has two parsers")
            joined[name] = parse
    return joined


_PARSERS: Final = _join(
    session.PARSERS,
    mailboxes.PARSERS,
    messages.PARSERS,
    search.PARSERS,
    fetch.PARSERS,
    compress.PARSERS,
    sort.PARSERS,
    unauthenticate.PARSERS,
    notify.PARSERS,
    quota.PARSERS,
    replace.PARSERS,
    context.PARSERS,
)

KNOWN_COMMANDS: Final = frozenset(_PARSERS)
"""Every command name `parse_command` accepts ("UID FETCH" style for UID commands)."""


def parse_command(data: bytes, *, utf8: bool = False, max_depth: int = 32) -> c.Command:
    """Parse one framed command (no final CRLF; literals inline with CRLF after ``}``).

    `utf8` allows UTF-8 in quoted strings (RFC 6855 UTF8=ACCEPT, IMAP4rev2 RFC 9051 §9).
    Raises ParseError; the caller knows the tag from `parse_tag`.
    """
    tag = parse_tag(data)
    if tag is None:
        raise ParseError("Invalid tag")
    r = Reader(data, utf8=utf8, max_depth=max_depth)
    r.pos = len(tag) + 1
    word = r.run(ATOM_CHAR).upper()
    name = word.decode("ascii")
    if word == b"UID":
        r.sp()
        name = "UID " + r.run(ATOM_CHAR).upper().decode("ascii")
    parser = _PARSERS.get(name)
    if parser is None:
        raise ParseError("Unknown command")
    return parser(r, tag)


__all__ = [
    "ASTRING_CHAR",
    "KNOWN_COMMANDS",
    "MONTHS",
    "ParseError",
    "command_name",
    "decode_base64",
    "parse_command",
    "parse_sequence_set",
    "parse_tag",
]
