"""SORT and THREAD (RFC 5256), with ESORT's RETURN options (RFC 5267 §3) and the
DISPLAYFROM / DISPLAYTO keys (RFC 5957).

The search criteria are the `pillarbox.model.search` AST SEARCH uses; the sort criteria
are `model.sorting.SortCriterion` values, shared with the sorting service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from pillarbox.model.search import SearchAnd
from pillarbox.model.sorting import SortCriterion
from pillarbox.proto.imap.commands.base import NO_CRITERIA, Command
from pillarbox.proto.imap.commands.fetch import FetchItem
from pillarbox.proto.imap.commands.search import PartialRange

ESORT_OPTIONS: Final = frozenset(
    {"MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL", "UPDATE", "CONTEXT"}
)
"""The RETURN options SORT accepts: ESEARCH's (RFC 5267 §3.1), SAVE for "any command based
on SEARCH" (RFC 5182 §1), and the context options (RFC 5267 §4.1)."""


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT / UID SORT (RFC 5256 §4); ESORT when `return_options` is not None (RFC 5267).

    `charset` is upper-cased (SORT requires one); `return_options` is None without a
    RETURN clause (answer ``* SORT``), else the upper-cased options (``()`` means ALL);
    `partial` is PARTIAL's range, positions in sort order (RFC 5267 §4.4); `update_fetch`
    as for `Search`.
    """

    NAME: ClassVar[str] = "SORT"
    uid: bool = False
    criteria: tuple[SortCriterion, ...] = ()
    charset: str = "UTF-8"
    search: SearchAnd = NO_CRITERIA
    return_options: tuple[str, ...] | None = None
    partial: PartialRange | None = None
    update_fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD / UID THREAD (RFC 5256 §4): `algorithm` upper-cased as sent (the server
    refuses one it does not offer), `charset` upper-cased (required)."""

    NAME: ClassVar[str] = "THREAD"
    uid: bool = False
    algorithm: str = "REFERENCES"
    charset: str = "UTF-8"
    search: SearchAnd = NO_CRITERIA
