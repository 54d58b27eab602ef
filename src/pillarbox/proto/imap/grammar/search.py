"""Parse functions of SEARCH / UID SEARCH and its search keys.

RFC 9051 §6.4.4 and §9 search-key, RETURN options of ESEARCH (RFC 4731 §3), SAVE (RFC 5182)
and CONTEXT, UPDATE and PARTIAL (RFC 5267 §4, with RFC 9394 §4's negative ranges;
`return_options` serves SORT too), MODSEQ (RFC 7162 §3.1.5), OLDER/YOUNGER (RFC 5032). The
keys parse straight into the `pillarbox.model.search` AST the store evaluates. Search
strings are decoded here, per the CHARSET the command named (kept on the reader), so nothing
later sees raw bytes; NOT/OR chains are bounded by the reader's depth limit like
parenthesised lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pillarbox.model import objectids
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar import dates
from pillarbox.proto.imap.grammar.chars import (
    ATOM_CHAR,
    COLON,
    DIGIT,
    DQUOTE,
    LPAREN,
    MAX_MODSEQ,
    MAX_NZ,
    MINUS,
    RPAREN,
    SP,
)
from pillarbox.proto.imap.grammar.fetch import _fetch_att as fetch_att
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader

_SAVED_KEYS: Final[dict[bytes, Literal["before", "on", "since"]]] = {
    b"SAVEDBEFORE": "before",
    b"SAVEDON": "on",
    b"SAVEDSINCE": "since",
}
_FLAG_KEYS: Final = {
    b"ANSWERED": ("\\Answered", True),
    b"DELETED": ("\\Deleted", True),
    b"DRAFT": ("\\Draft", True),
    b"FLAGGED": ("\\Flagged", True),
    b"SEEN": ("\\Seen", True),
    b"RECENT": ("\\Recent", True),
    b"UNANSWERED": ("\\Answered", False),
    b"UNDELETED": ("\\Deleted", False),
    b"UNDRAFT": ("\\Draft", False),
    b"UNFLAGGED": ("\\Flagged", False),
    b"UNSEEN": ("\\Seen", False),
    b"OLD": ("\\Recent", False),
}


_HEADER_KEYS: Final = {b"BCC", b"CC", b"FROM", b"SUBJECT", b"TO"}


_DATE_KEYS: Final[dict[bytes, tuple[Literal["before", "on", "since"], bool]]] = {
    b"BEFORE": ("before", False),
    b"ON": ("on", False),
    b"SINCE": ("since", False),
    b"SENTBEFORE": ("before", True),
    b"SENTON": ("on", True),
    b"SENTSINCE": ("since", True),
}


def _search_string(r: Reader) -> str:
    """A SEARCH string decoded per CHARSET (RFC 9051 §6.4.4): UTF-8 when none is named
    (always accepted); US-ASCII refuses 8-bit octets; any other charset is decoded as
    Latin-1, byte for byte, and refused by the server (``NO [BADCHARSET]``)."""
    raw = r.astring()
    charset = r.charset
    if charset is None or charset == "UTF-8":
        return raw.decode("utf-8", "replace")
    if charset == "US-ASCII":
        if not raw.isascii():
            raise ParseError("Non-ASCII search string with CHARSET US-ASCII")
        return raw.decode("ascii")
    return raw.decode("latin-1")


def _search_key(r: Reader) -> c.SearchKey:
    """One search-key (RFC 9051 §9); recursion is bounded by the reader's depth limit."""
    r.depth += 1
    if r.depth > r.max_depth:
        raise ParseError("Too deeply nested")
    try:
        return _search_key_inner(r)
    finally:
        r.depth -= 1


def _search_key_inner(r: Reader) -> c.SearchKey:
    ch = r.peek()
    if ch == LPAREN:
        r.pos += 1
        keys = [_search_key(r)]
        while r.peek() == SP:
            r.pos += 1
            keys.append(_search_key(r))
        if r.peek() != RPAREN:
            raise ParseError("Expected )")
        r.pos += 1
        return c.SearchAnd(tuple(keys))
    if ch != -1 and (DIGIT[ch] or ch in b"*$"):
        return c.SearchSequence(r.sequence_set())
    word = r.run(ATOM_CHAR).upper()
    if not word:
        raise ParseError("Expected search key")
    if word == b"ALL":
        return c.SearchAll()
    flag = _FLAG_KEYS.get(word)
    if flag is not None:
        return c.SearchFlag(flag[0], flag[1])
    if word == b"NEW":
        return c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)))
    if word in (b"KEYWORD", b"UNKEYWORD"):
        r.sp()
        return c.SearchFlag(r.atom("keyword"), word == b"KEYWORD")
    if word in _HEADER_KEYS:
        r.sp()
        return c.SearchHeader(word.decode().lower(), _search_string(r))
    if word == b"HEADER":
        r.sp()
        name = r.text(r.astring(), "Header name")
        r.sp()
        return c.SearchHeader(name.lower(), _search_string(r))
    if word == b"BODY":
        r.sp()
        return c.SearchText(_search_string(r), body_only=True)
    if word == b"TEXT":
        r.sp()
        return c.SearchText(_search_string(r))
    date_key = _DATE_KEYS.get(word)
    if date_key is not None:
        r.sp()
        return c.SearchDate(date_key[0], dates.date(r), date_key[1])
    saved = _SAVED_KEYS.get(word)
    if saved is not None:
        r.sp()  # RFC 8514 §4.3
        return c.SearchSaveDate(saved, dates.date(r))
    if word == b"SAVEDATESUPPORTED":
        # RFC 8514 §4.3: every mailbox keeps save dates, so it matches every message.
        return c.SearchAll()
    if word in (b"LARGER", b"SMALLER"):
        r.sp()
        return c.SearchSize("larger" if word == b"LARGER" else "smaller", r.number(MAX_MODSEQ))
    if word == b"UID":
        r.sp()
        return c.SearchSequence(r.sequence_set(), uid=True)
    if word == b"NOT":
        r.sp()
        return c.SearchNot(_search_key(r))
    if word == b"OR":
        r.sp()
        left = _search_key(r)
        r.sp()
        return c.SearchOr(left, _search_key(r))
    if word == b"MODSEQ":
        # RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        r.sp()
        entry_name = entry_type = None
        if r.peek() == DQUOTE:
            entry_name = r.text(r.quoted(), "Entry name")
            r.sp()
            entry_type = r.upper_atom("entry type").lower()
            if entry_type not in ("priv", "shared", "all"):
                raise ParseError("Invalid entry type")
            r.sp()
        return c.SearchModseq(r.number(MAX_MODSEQ), entry_name, entry_type)
    if word in (b"EMAILID", b"THREADID"):
        # RFC 8474 §6: EMAILID / THREADID SP objectid
        r.sp()
        value = _objectid(r)
        if word == b"THREADID":
            return c.SearchThreadId(objectids.thread_of_object_id(value))
        return c.SearchEmailId(objectids.blob_of_email_id(value))
    if word in (b"OLDER", b"YOUNGER"):
        # RFC 5032
        r.sp()
        return c.SearchWithin(
            "older" if word == b"OLDER" else "younger", r.number(MAX_NZ, nonzero=True)
        )
    raise ParseError("Unknown search key")


def _objectid(r: Reader) -> str:
    """RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-")."""
    value = r.atom("objectid")
    if len(value) > 255 or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in value):
        raise ParseError("Invalid objectid")
    return value


search_key: Final = _search_key
"""One search-key, for the commands that embed SEARCH's criteria (SORT, THREAD)."""


def _partial_range(r: Reader) -> c.PartialRange:
    """RFC 9394 §4: ``partial-range = partial-range-first / partial-range-last``, i.e.
    ``nz-number ":" nz-number`` or ``"-" nz-number ":" "-" nz-number`` (no "*", no 0, no
    mixed signs; RFC 5267 §5 had only the first form)."""
    negative = r.peek() == MINUS
    r.pos += negative
    first = r.number(MAX_NZ, nonzero=True)
    if r.peek() != COLON:
        raise ParseError("Invalid partial range")
    r.pos += 1
    if negative:
        if r.peek() != MINUS:
            raise ParseError("Invalid partial range")
        r.pos += 1
    last = r.number(MAX_NZ, nonzero=True)
    nxt = r.peek()
    if nxt != -1 and ATOM_CHAR[nxt]:
        raise ParseError("Invalid partial range")
    return c.PartialRange(-first, -last) if negative else c.PartialRange(first, last)


@dataclass(frozen=True, slots=True)
class ReturnOptions:
    """A parsed RETURN clause: upper-cased option names, PARTIAL's range, and the fetch
    attributes of ``UPDATE (fetch-att ...)``."""

    names: tuple[str, ...]
    partial: c.PartialRange | None = None
    update_fetch: tuple[c.FetchItem, ...] = ()


def _update_fetch(r: Reader) -> tuple[c.FetchItem, ...]:
    """RFC 5465 §8: ``modifier-update = "UPDATE" [SP "(" fetch-att *(SP fetch-att) ")"]``
    (CONTEXT=SEARCH/SORT together with NOTIFY); none when no list follows."""
    if r.data[r.pos : r.pos + 2] != b" (":
        return ()
    r.pos += 1
    r.open_paren()
    items: list[c.FetchItem] = []
    fetch_att(r, items, allow_macro=False)
    while r.peek() == SP:
        r.pos += 1
        fetch_att(r, items, allow_macro=False)
    r.close_paren()
    return tuple(items)


def return_options(r: Reader, allowed: frozenset[str]) -> ReturnOptions:
    """``RETURN (opt *(SP opt))`` after the word RETURN (RFC 4466 search-return-opts).
    Refused (BAD): a name not in `allowed`, PARTIAL twice or with ALL (RFC 5267 §4.4),
    UPDATE twice."""
    r.sp()
    r.open_paren()
    names: list[str] = []
    partial: c.PartialRange | None = None
    update_fetch: tuple[c.FetchItem, ...] = ()
    if r.peek() != RPAREN:
        while True:
            name = r.upper_atom("return option")
            if name not in allowed:
                raise ParseError("Unknown search return option")
            if name == "PARTIAL":
                if partial is not None:
                    raise ParseError("PARTIAL given twice")
                r.sp()
                partial = _partial_range(r)
            elif name == "UPDATE":
                if name in names:
                    raise ParseError("UPDATE given twice")
                update_fetch = _update_fetch(r)
            names.append(name)
            if r.peek() != SP:
                break
            r.pos += 1
    r.close_paren()
    if partial is not None and "ALL" in names:
        # RFC 5267 §4.4: "either one PARTIAL, one ALL, or neither PARTIAL nor ALL".
        raise ParseError("PARTIAL and ALL are mutually exclusive")
    return ReturnOptions(tuple(names), partial, update_fetch)


def _parse_search(r: Reader, tag: str, uid: bool) -> c.Search:
    # RFC 9051 §6.4.4, RFC 4731 §3 (RETURN), RFC 5182 (SAVE), RFC 5267 §4
    r.sp()
    ret: ReturnOptions | None = None
    charset: str | None = None
    if r.accept(b"RETURN"):
        ret = return_options(r, c.ESEARCH_OPTIONS)
        r.sp()
    if r.accept(b"CHARSET"):
        r.sp()
        charset = r.text(r.astring(), "Charset").upper()
        r.charset = charset
        r.sp()
    keys = [_search_key(r)]
    while r.maybe_sp():
        keys.append(_search_key(r))
    r.end()
    if ret is None:
        return c.Search(tag, uid, charset, c.SearchAnd(tuple(keys)))
    return c.Search(
        tag, uid, charset, c.SearchAnd(tuple(keys)), ret.names, ret.partial, ret.update_fetch
    )


PARSERS: Final[dict[str, CommandParser]] = {
    "SEARCH": lambda r, t: _parse_search(r, t, False),
    "UID SEARCH": lambda r, t: _parse_search(r, t, True),
}
