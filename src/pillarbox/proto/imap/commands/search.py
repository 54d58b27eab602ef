"""SEARCH and the result options it may ask for.

SEARCH / UID SEARCH (RFC 9051 §6.4.4), ESEARCH result options (RFC 4731 §3.1), SAVE
(SEARCHRES, RFC 5182) and the context options PARTIAL, UPDATE and CONTEXT (RFC 5267 §4,
PARTIAL's negative ranges from RFC 9394 §3.1). The search keys themselves are not defined
here: they are the `pillarbox.model.search` AST, shared with services and the store, so a
parsed SEARCH goes down to the store unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from pillarbox.model.search import SearchAnd
from pillarbox.proto.imap.commands.base import NO_CRITERIA, Command
from pillarbox.proto.imap.commands.fetch import FetchItem

ESEARCH_OPTIONS: Final = frozenset(
    {"MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL", "UPDATE", "CONTEXT"}
)
"""The RETURN options SEARCH accepts (RFC 4731 §3.1; SAVE from RFC 5182; PARTIAL, UPDATE
and CONTEXT from RFC 5267 §4.2-§4.4)."""


@dataclass(frozen=True, slots=True)
class PartialRange:
    """``PARTIAL first:last`` (RFC 5267 §4.4, RFC 9394 §3.1): 1-based positions in the
    result, as sent (``500:400`` is kept so; it means 400:500). Both are negative for
    RFC 9394's ``-1:-100``, counted from the end of the result (-1 is the last)."""

    first: int
    last: int

    def slice_of(self, count: int) -> tuple[int, int]:
        """The ``[start, stop)`` indexes this range picks from a result of `count`
        (``start == stop`` when none: NIL)."""
        lo, hi = sorted((self.first, self.last))
        if lo < 0:
            # RFC 9394 §3.1: -1 is the last result; -100:-1 are the last 100.
            lo, hi = count + lo + 1, count + hi + 1
        start = min(max(lo, 1) - 1, count)
        return start, max(min(hi, count), start)

    def wire(self) -> bytes:
        return b"%d:%d" % (self.first, self.last)


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182).

    `criteria` is always a `SearchAnd` of the top-level keys. `charset` is upper-cased, None
    when absent. `return_options` is None without a RETURN clause (answer ``* SEARCH`` in
    IMAP4rev1, ``* ESEARCH`` in IMAP4rev2), else the upper-cased options (MIN MAX ALL COUNT
    SAVE PARTIAL UPDATE CONTEXT; ``()`` means ALL per RFC 4731 §3.1); `partial` is the
    range PARTIAL named (at most one, never with ALL: RFC 5267 §4.4); `update_fetch` the
    fetch attributes of ``UPDATE (...)`` (RFC 5465 §7), sent for new messages that join.
    """

    NAME: ClassVar[str] = "SEARCH"
    uid: bool = False
    charset: str | None = None
    criteria: SearchAnd = NO_CRITERIA
    return_options: tuple[str, ...] | None = None
    partial: PartialRange | None = None
    update_fetch: tuple[FetchItem, ...] = ()
