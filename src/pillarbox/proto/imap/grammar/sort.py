"""Parse functions of SORT / UID SORT and THREAD / UID THREAD (RFC 5256 §5, RFC 5267 §5
ESORT and CONTEXT=SORT, RFC 5957).

``sort = ["UID" SP] "SORT" SP [search-return-opts SP] sort-criteria SP search-criteria``;
``sort-criterion = ["REVERSE" SP] sort-key``; ``search-criteria = charset 1*(SP
search-key)`` and ``thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`` —
unlike SEARCH, the charset is required. Search keys are SEARCH's own
(`grammar.search.search_key`), decoded per the charset in the same way.
"""

from __future__ import annotations

from typing import Final

from pillarbox.model.sorting import SORT_KEYS, SortCriterion
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import RPAREN, SP
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader
from pillarbox.proto.imap.grammar.search import return_options, search_key


def _sort_criteria(r: Reader) -> tuple[SortCriterion, ...]:
    r.open_paren()
    out: list[SortCriterion] = []
    while True:
        reverse = r.accept(b"REVERSE")
        if reverse:
            r.sp()
        key = r.upper_atom("sort key")
        if key not in SORT_KEYS:
            raise ParseError("Unknown sort key")
        out.append(SortCriterion(key, reverse))
        if r.peek() == RPAREN:
            break
        r.sp()
    r.close_paren()
    return tuple(out)


def search_criteria(r: Reader) -> tuple[str, c.SearchAnd]:
    """``charset 1*(SP search-key)`` (RFC 5256 §5): the upper-cased charset and the keys."""
    charset = r.text(r.astring(), "Charset").upper()
    r.charset = charset
    keys = []
    r.sp()
    keys.append(search_key(r))
    while r.peek() == SP:
        r.pos += 1
        keys.append(search_key(r))
    r.end()
    return charset, c.SearchAnd(tuple(keys))


def _parse_sort(r: Reader, tag: str, uid: bool) -> c.Sort:
    r.sp()
    ret = None
    if r.accept(b"RETURN"):
        # RFC 5267 §5: extended-sort takes search-return-opts (ESORT, CONTEXT=SORT)
        ret = return_options(r, c.ESORT_OPTIONS)
        r.sp()
    criteria = _sort_criteria(r)
    r.sp()
    charset, keys = search_criteria(r)
    if ret is None:
        return c.Sort(tag, uid, criteria, charset, keys)
    return c.Sort(tag, uid, criteria, charset, keys, ret.names, ret.partial, ret.update_fetch)


def _parse_thread(r: Reader, tag: str, uid: bool) -> c.Thread:
    r.sp()
    algorithm = r.upper_atom("threading algorithm")
    r.sp()
    charset, keys = search_criteria(r)
    return c.Thread(tag, uid, algorithm, charset, keys)


PARSERS: Final[dict[str, CommandParser]] = {
    "SORT": lambda r, t: _parse_sort(r, t, False),
    "UID SORT": lambda r, t: _parse_sort(r, t, True),
    "THREAD": lambda r, t: _parse_thread(r, t, False),
    "UID THREAD": lambda r, t: _parse_thread(r, t, True),
}
