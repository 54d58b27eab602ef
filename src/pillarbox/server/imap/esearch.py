"""ESEARCH responses: the answer of SEARCH and SORT with RETURN options, and the update
notifications of their contexts.

RFC 4731 §3.1 / RFC 9051 §7.3.4 (``* ESEARCH (TAG "t") [UID] MIN n ...``), RFC 5267 §3.1
(ESORT: MIN and MAX are the first and last in sort order, ALL keeps the sort order), §4.4
(``PARTIAL (range set)`` or ``PARTIAL (range NIL)``), §4.3.3 / §4.3.4 (``ADDTO (position
set ...)`` and ``REMOVEFROM (position set ...)``); RFC 7162 §3.1.5 (``MODSEQ n``). One
function builds the result line for SEARCH and SORT alike, so the two never drift apart;
numbers arrive in result order (ascending for SEARCH).

Must not: know about sessions or the store (the session imports this module).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import responses
from pillarbox.server.imap import wire
from pillarbox.services.live_results import LiveResult, ResultChange, Run

DATA_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "PARTIAL"})
"""RETURN options that ask for result data (SAVE, UPDATE and CONTEXT ask for none)."""


def head(tag: str, uid: bool) -> bytes:
    """``ESEARCH (TAG "t") [UID]``: the search correlator (RFC 4466 §2.6.2)."""
    return b"ESEARCH (TAG " + wire.string(tag) + b")" + (b" UID" if uid else b"")


def result(
    tag: str,
    uid: bool,
    numbers: Sequence[int],
    options: Sequence[str],
    partial: c.PartialRange | None = None,
    modseq: int | None = None,
) -> bytes:
    """The result line; `numbers` in result order (UIDs or sequence numbers)."""
    out = head(tag, uid)
    if numbers and "MIN" in options:
        out += b" MIN %d" % numbers[0]
    if numbers and "MAX" in options:
        out += b" MAX %d" % numbers[-1]
    if "COUNT" in options:
        out += b" COUNT %d" % len(numbers)
    if numbers and "ALL" in options:
        out += b" ALL " + responses.ordered_sequence_set(numbers)
    if partial is not None:
        # RFC 5267 §4.4: the requested range as sent, then what lies in it, or NIL.
        start, stop = partial.slice_of(len(numbers))
        picked = responses.ordered_sequence_set(numbers[start:stop]) if stop > start else b"NIL"
        out += b" PARTIAL (" + partial.wire() + b" " + picked + b")"
    if modseq is not None:
        out += b" MODSEQ %d" % modseq
    return out


def saved(uids: Sequence[int], options: Sequence[str], partial: c.PartialRange | None) -> list[int]:
    """What RETURN (SAVE ...) puts into "$", from the UIDs in result order: all of them,
    unless only MIN, MAX and/or PARTIAL were asked for — then just the messages those
    return (RFC 5182 §2.4, RFC 9394 §3.2; SORT's MIN/MAX are first/last in sort order)."""
    asked = DATA_OPTIONS.intersection(options)
    if not asked or asked & {"ALL", "COUNT"}:
        return sorted(uids)
    keep: set[int] = set()
    if uids and "MIN" in asked:
        keep.add(uids[0])
    if uids and "MAX" in asked:
        keep.add(uids[-1])
    if partial is not None:
        start, stop = partial.slice_of(len(uids))
        keep.update(uids[start:stop])
    return sorted(keep)


def update(tag: str, live: LiveResult, change: ResultChange, number: Callable[[int], int]) -> bytes:
    """``ESEARCH (TAG "t") [UID] REMOVEFROM (...) ADDTO (...)`` for one changed context
    (RFC 5267 §4.3.3, §4.3.4): removals first, each pair applied in order. A sort gives
    exact positions; a search gives position 0 with the set in mailbox order (§4.3.3: "MAY
    be zero", mailbox order RECOMMENDED), since its members are always in mailbox order."""
    out = head(tag, live.by_uid)
    if change.removed:
        out += b" REMOVEFROM (" + _pairs(change.removed, live.ordered, number) + b")"
    if change.added:
        out += b" ADDTO (" + _pairs(change.added, live.ordered, number) + b")"
    return out


def _pairs(runs: list[Run], ordered: bool, number: Callable[[int], int]) -> bytes:
    if not ordered:
        return b"0 " + wire.sequence_set(number(u) for _, uids in runs for u in uids)
    return b" ".join(
        b"%d %s" % (pos, responses.ordered_sequence_set([number(u) for u in uids]))
        for pos, uids in runs
    )
