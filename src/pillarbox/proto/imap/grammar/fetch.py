"""Parse functions of FETCH / UID FETCH: items, body sections, partials and modifiers.

RFC 9051 §6.4.5 and §9 fetch-att/section, RFC 3501 §6.4.5 (the RFC822.* items), BINARY
and BINARY.SIZE (RFC 3516), CHANGEDSINCE and VANISHED (RFC 7162 §3.1.4, §3.2.6). One command,
but its item grammar (sections, part paths, partials, macros) is as large as a family's,
and it is the command clients send most: it has a room of its own.
"""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import (
    DIGIT,
    FETCH_NAME_CHAR,
    LPAREN,
    MAX_MODSEQ,
    MAX_NZ,
    SP,
)
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader

_MACROS: Final = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


def _section_part(r: Reader) -> tuple[int, ...]:
    """nz-number *("." nz-number), stopping before a "." that does not lead to digits."""
    parts = [r.number(MAX_NZ, nonzero=True)]
    while r.peek() == ord(".") and r.pos + 1 < len(r.data) and DIGIT[r.data[r.pos + 1]]:
        r.pos += 1
        parts.append(r.number(MAX_NZ, nonzero=True))
    return tuple(parts)


def _partial(r: Reader) -> c.Partial | None:
    # RFC 9051 §9: partial = "<" number64 "." nz-number64 ">"
    if r.peek() != ord("<"):
        return None
    r.pos += 1
    origin = r.number(MAX_MODSEQ)
    r.expect(b".")
    length = r.number(MAX_MODSEQ, nonzero=True)
    r.expect(b">")
    return c.Partial(origin, length)


def _body_section(r: Reader, *, peek: bool, binary: bool) -> c.FetchBody:
    r.expect(b"[")
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    if r.peek() != ord("]"):
        if DIGIT[r.peek()]:
            part = _section_part(r)
            if r.peek() == ord("."):
                if binary:
                    raise ParseError("Invalid BINARY section")
                r.pos += 1
                kind, fields = _section_text(r, allow_mime=True)
        elif binary:
            raise ParseError("Invalid BINARY section")
        else:
            kind, fields = _section_text(r, allow_mime=False)
    r.expect(b"]")
    return c.FetchBody(part, kind, fields, _partial(r), peek, binary)


def _section_text(r: Reader, *, allow_mime: bool) -> tuple[c.SectionKind, tuple[str, ...]]:
    word = r.run(FETCH_NAME_CHAR).upper()
    if word == b"HEADER":
        return "HEADER", ()
    if word == b"TEXT":
        return "TEXT", ()
    if word == b"MIME" and allow_mime:
        return "MIME", ()
    if word in (b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
        r.sp()
        r.open_paren()
        names = [r.text(r.astring(), "Header name")]
        while r.peek() == SP:
            r.pos += 1
            names.append(r.text(r.astring(), "Header name"))
        r.close_paren()
        kind: c.SectionKind = "HEADER.FIELDS" if word == b"HEADER.FIELDS" else "HEADER.FIELDS.NOT"
        return kind, tuple(names)
    raise ParseError("Invalid section")


def _fetch_att(r: Reader, out: list[c.FetchItem], *, allow_macro: bool) -> None:
    name = r.run(FETCH_NAME_CHAR).upper().decode("ascii")
    if not name:
        raise ParseError("Expected fetch attribute")
    nxt = r.peek()
    if name in ("BODY", "BODY.PEEK") and nxt == ord("["):
        out.append(_body_section(r, peek=name == "BODY.PEEK", binary=False))
    elif name in ("BINARY", "BINARY.PEEK") and nxt == ord("["):
        out.append(_body_section(r, peek=name == "BINARY.PEEK", binary=True))
    elif name == "BINARY.SIZE" and nxt == ord("["):
        r.pos += 1
        part: tuple[int, ...] = ()
        if r.peek() != ord("]"):
            part = _section_part(r)
        r.expect(b"]")
        out.append(c.FetchBinarySize(part))
    elif name in c.SIMPLE_FETCH_ATTRIBUTES:
        out.append(c.FetchAttribute(name))
        if name == "PREVIEW":
            _preview_modifiers(r)
    elif allow_macro and name in _MACROS:
        out.extend(c.FetchAttribute(n) for n in _MACROS[name])
    else:
        raise ParseError("Invalid fetch attribute")


def _preview_modifiers(r: Reader) -> None:
    """RFC 8970 §6: ``"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]``, preview-mod
    "LAZY". Previews are computed at delivery, so LAZY never changes the answer."""
    if r.data[r.pos : r.pos + 2] != b" (":
        return
    r.pos += 1
    modifiers = r.atom_list()
    if not modifiers or set(modifiers) != {"LAZY"}:
        raise ParseError("Unknown preview modifier")


def _parse_fetch(r: Reader, tag: str, uid: bool) -> c.Fetch:
    # RFC 9051 §6.4.5, RFC 7162 §3.1.4 (CHANGEDSINCE) / §3.2.6 (VANISHED), RFC 3516
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    items: list[c.FetchItem] = []
    if r.peek() == LPAREN:
        # RFC 9051 §9 allows ALL/FAST/FULL only bare, but clients (imapclient) send
        # "(FAST)": accept a macro as the first item of a list.
        r.open_paren()
        _fetch_att(r, items, allow_macro=True)
        while r.peek() == SP:
            r.pos += 1
            _fetch_att(r, items, allow_macro=False)
        r.close_paren()
    else:
        _fetch_att(r, items, allow_macro=True)
    changed_since: int | None = None
    vanished = False
    if r.maybe_sp():
        r.open_paren()
        first = True
        while first or r.peek() == SP:
            if not first:
                r.pos += 1
            first = False
            mod = r.upper_atom("fetch modifier")
            if mod == "CHANGEDSINCE":
                r.sp()
                changed_since = r.number(MAX_MODSEQ, nonzero=True)
            elif mod == "VANISHED":
                vanished = True
            else:
                raise ParseError("Unknown fetch modifier")
        r.close_paren()
    r.end()
    if vanished and (not uid or changed_since is None):
        # RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE
        raise ParseError("VANISHED requires UID FETCH with CHANGEDSINCE")
    return c.Fetch(tag, uid, seqset, tuple(items), changed_since, vanished)


PARSERS: Final[dict[str, CommandParser]] = {
    "FETCH": lambda r, t: _parse_fetch(r, t, False),
    "UID FETCH": lambda r, t: _parse_fetch(r, t, True),
}
