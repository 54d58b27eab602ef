"""Message sets and SEARCH keys (RFC 9051 §6.4.4, §9): one set of types for every layer.

The IMAP parser builds these trees, the selected mailbox's view (`services.mailbox`)
resolves what only a session can resolve — message sequence numbers and the saved
result "$" (`SearchSequence`) become `SearchUids`, and ``\\Recent`` (never stored: the
UIDs an IMAP4rev1 session holds as recent) becomes `SearchUids` too — and the store turns
what is left into one query. A key the
store cannot evaluate (`SearchSequence`, `SearchWithin` without its cutoff) is refused by
the store with `ValueError`: resolving them first is the caller's job.

Conventions: header field names are lower-case; strings are text (the parser decodes
them per the SEARCH CHARSET); dates are calendar days, compared without time or zone.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class SeqRange:
    """One element of a sequence set: ``start:end``; a single number has start == end.

    ``None`` stands for "*" (the largest number in use). The range is kept as sent: ``5:2``
    is not swapped, since RFC 9051 §9 (seq-range) says it means the same as ``2:5``.
    """

    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence-set (RFC 9051 §9), or "$", the saved search result (RFC 5182).

    When `saved` is True, `ranges` is empty: "$" cannot be combined with numbers.
    """

    ranges: tuple[SeqRange, ...]
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Ranges as ordered ``(low, high)`` pairs with "*" replaced by `largest`.

        Not merged or clipped. Raises ValueError for "$" (the caller substitutes its
        saved result).
        """
        if self.saved:
            raise ValueError("'$' has no numbers; use the saved search result")
        out: list[tuple[int, int]] = []
        for r in self.ranges:
            a = largest if r.start is None else r.start
            b = largest if r.end is None else r.end
            out.append((a, b) if a <= b else (b, a))
        return out

    def __iter__(self) -> Iterator[SeqRange]:
        return iter(self.ranges)


@dataclass(frozen=True, slots=True)
class SearchAll:
    """ALL: every message."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag test: ANSWERED ... UNSEEN, KEYWORD/UNKEYWORD; `present` False for UN-forms.

    RECENT/OLD test ``\\Recent`` (NEW is ``\\Recent`` and not ``\\Seen``).
    """

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """HEADER field string, and FROM/TO/CC/BCC/SUBJECT; `field` lower-case.

    `value` is a case-insensitive substring; "" matches any message having the field.
    """

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """TEXT (header and body) or, with `body_only`, BODY: a case-insensitive substring."""

    value: str
    body_only: bool = False


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date:, `sent`)."""

    op: Literal["before", "on", "since"]
    day: datetime.date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER n / SMALLER n on RFC822.SIZE."""

    op: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5): mod-sequence >= `modseq`."""

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchSaveDate:
    """SAVEDBEFORE / SAVEDON / SAVEDSINCE (RFC 8514 §4.3): the day the message was saved
    in its mailbox (UTC), or of its internal date where no save date was kept."""

    op: Literal["before", "on", "since"]
    day: datetime.date


@dataclass(frozen=True, slots=True)
class SearchEmailId:
    """EMAILID objectid (RFC 8474 §6): the messages whose content is blob `blob_id`
    (`model.objectids`); None, from an id that is not ours, matches nothing."""

    blob_id: int | None


@dataclass(frozen=True, slots=True)
class SearchThreadId:
    """THREADID objectid (RFC 8474 §6): the messages of thread `thread_id`
    (`model.objectids`); None, from an id that is not ours, matches nothing."""

    thread_id: int | None


@dataclass(frozen=True, slots=True)
class SearchWithin:
    """OLDER n / YOUNGER n (RFC 5032): internal date more/less than n seconds ago.
    `cutoff` (UTC epoch seconds: now minus `seconds`) is set by the session's view when
    it resolves the key; the store only evaluates a key that has it."""

    op: Literal["older", "younger"]
    seconds: int
    cutoff: int | None = None


@dataclass(frozen=True, slots=True)
class SearchSequence:
    """A message set as the client names it: sequence numbers, or UIDs with `uid`, or "$".

    Only a session knows what the numbers mean; it replaces this by `SearchUids`.
    """

    sequence_set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class SearchUids:
    """Messages by UID, as inclusive ranges."""

    uids: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Keys that must all match: the top level of SEARCH and "(...)" lists."""

    keys: tuple[SearchKey, ...] = field(default_factory=tuple)


SearchKey: TypeAlias = (
    SearchAll
    | SearchFlag
    | SearchHeader
    | SearchText
    | SearchDate
    | SearchSize
    | SearchModseq
    | SearchEmailId
    | SearchThreadId
    | SearchSaveDate
    | SearchWithin
    | SearchSequence
    | SearchUids
    | SearchNot
    | SearchOr
    | SearchAnd
)
