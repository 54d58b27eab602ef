"""Live search and sort results of one selected session: RFC 5267 §4.3 update contexts.

A SEARCH or SORT with RETURN (UPDATE) leaves a `LiveResult` behind: the store-ready key
(message sets already turned into UIDs by the view, so sequence numbers and "$" in the
criteria keep the meaning they had when the command ran), the sort criteria, and the
matching UIDs in result order. `LiveResults` keeps a session's results and says how each
one changed, as positions to remove from and add at, for the front-end to announce.

Theory of operation — what it costs: change events are only *noted* (`record`, no I/O,
called inside the bus's publish): the UIDs of flag changes, and only while some result
depends on flags (a flag or MODSEQ key); new messages are found from the view itself
(UIDs above the highest one each result has seen). `refresh`, called where the session
may send untagged responses, re-evaluates a result only when such a candidate exists, with
one store query for all its candidates together (``key AND UID candidates``) — never one
per message; a sorted result that gained messages takes one more read, the sort columns
of its members (`sorting.sorted_uids`). Expunges cost no query at all (`expunged`: the
UIDs leave every result). Sort keys never depend on flags, so members keep their relative
order and a sorted result changes only by insertions and removals. A lost change feed
(`Resync`) or too many pending flag changes re-evaluates each result over the whole
mailbox, once.

Must not: know protocol syntax (tags are opaque names here, positions are plain numbers),
or query the store per message.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pillarbox.model import (
    Change,
    FlagsChanged,
    Resync,
    SearchAnd,
    SearchFlag,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
)
from pillarbox.model.sorting import SortCriterion
from pillarbox.services.selected import SelectedMailbox

MAX_LIVE_RESULTS = 5
"""Live results one session may hold (RFC 5267 §4.3.1: at least one; more is refused)."""

_MAX_PENDING_FLAGS = 10_000
"""Flag-changed UIDs noted before a refresh falls back to one whole-mailbox query."""

Run = tuple[int, list[int]]
"""A position (1-based) and the UIDs that start there, in result order."""


@dataclass(slots=True)
class ResultChange:
    """How one live result changed: `removed` runs first, then `added` runs, each to be
    applied in order (RFC 5267 §4.3.2). Removal positions count before the removal
    (highest first, so each stays valid); insertion positions are final (lowest first)."""

    removed: list[Run] = field(default_factory=list)
    added: list[Run] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


class LiveResult:
    """One kept result: `uids` in result order (ascending for a search, sort order for a
    sort), `top` the highest UID of the view it was last evaluated against."""

    __slots__ = ("by_uid", "criteria", "key", "members", "top", "uids", "uses_flags")

    def __init__(
        self,
        key: SearchKey,
        uids: Sequence[int],
        top: int,
        *,
        criteria: tuple[SortCriterion, ...] | None = None,
        by_uid: bool = False,
    ) -> None:
        self.key = key
        self.criteria = criteria
        self.by_uid = by_uid  # the front-end names members by UID, not sequence number
        self.uids = list(uids)
        self.members = set(self.uids)
        self.top = top
        self.uses_flags = _uses_flags(key)

    @property
    def ordered(self) -> bool:
        """A sort result: positions matter (a search result is in mailbox order)."""
        return self.criteria is not None

    def _remove(self, gone: set[int]) -> list[Run]:
        index = {u: i for i, u in enumerate(self.uids)}
        runs = _runs(sorted(index[u] + 1 for u in gone), self.uids)
        self.uids = [u for u in self.uids if u not in gone]
        self.members -= gone
        return runs[::-1]

    def _settle(self, order: list[int], joined: set[int]) -> list[Run]:
        self.uids = order
        self.members = set(order)
        return _runs([i + 1 for i, u in enumerate(order) if u in joined], order)


class LiveResults:
    """The live results of one selected mailbox, by name (the front-end's tag)."""

    def __init__(self) -> None:
        self._results: dict[str, LiveResult] = {}
        self._flagged: set[int] = set()
        self._full = False
        self._unreported: list[tuple[str, LiveResult, ResultChange]] = []

    def __contains__(self, name: str) -> bool:
        return name in self._results

    def __len__(self) -> int:
        return len(self._results)

    def get(self, name: str) -> LiveResult | None:
        return self._results.get(name)

    def add(self, name: str, result: LiveResult) -> bool:
        """Keep `result`; False (nothing kept) when the session holds the maximum."""
        if len(self._results) >= MAX_LIVE_RESULTS:
            return False
        self._results[name] = result
        return True

    def cancel(self, name: str) -> None:
        self._results.pop(name, None)

    def record(self, change: Change, mailbox_id: int) -> None:
        """Note a change-bus event (synchronous, no I/O)."""
        if not self._results:
            return
        if isinstance(change, Resync):
            self._full = True
        elif isinstance(change, FlagsChanged) and change.mailbox_id == mailbox_id:
            if self._full or not any(r.uses_flags for r in self._results.values()):
                return
            self._flagged.update(row.uid for row in change.rows)
            if len(self._flagged) > _MAX_PENDING_FLAGS:
                self._flagged.clear()
                self._full = True

    def expunged(self, uids: Iterable[int]) -> list[tuple[str, LiveResult, ResultChange]]:
        """The messages `uids` were expunged (about to be reported): drop them from every
        result; removal positions count before the removal. No query."""
        gone = set(uids)
        out: list[tuple[str, LiveResult, ResultChange]] = []
        if not gone:
            return out
        for name, result in self._results.items():
            hit = gone & result.members
            if hit:
                out.append((name, result, ResultChange(removed=result._remove(hit))))
        return out

    async def refresh(
        self, selected: SelectedMailbox
    ) -> list[tuple[str, LiveResult, ResultChange]]:
        """Re-evaluate the results a recorded change may affect (see the module docstring)
        against the view as the client now knows it.

        A result whose query fails is left as it was; the others' changes are kept for the
        next call (nothing is lost: the next refresh looks at every message), and the
        first error is raised for the caller to log."""
        out, self._unreported = self._unreported, []
        flagged, self._flagged = self._flagged, set()
        full, self._full = self._full, False
        error: Exception | None = None
        view = selected.view
        for name, result in list(self._results.items()):
            if full:
                candidates: set[int] | None = None
            else:
                uids = view.uids
                candidates = set(uids[bisect_right(uids, result.top) :])
                if result.uses_flags:
                    candidates.update(u for u in flagged if view.seq_of(u) is not None)
                candidates = {u for u in candidates if not view.is_expunged(u)}
                if not candidates:
                    result.top = view.max_uid
                    continue
            try:
                change = await self._evaluate(selected, result, candidates)
            except Exception as exc:
                error = error or exc
                self._full = True
                continue
            result.top = view.max_uid
            if change and name in self._results:
                out.append((name, result, change))
        if error is not None:
            self._unreported = out
            raise error
        return out

    @staticmethod
    async def _evaluate(
        selected: SelectedMailbox, result: LiveResult, candidates: set[int] | None
    ) -> ResultChange:
        """Query, then change `result` (only once every await is done, so a failure leaves
        it as it was)."""
        view = selected.view
        found = await selected.matching(
            result.key, None if candidates is None else sorted(candidates)
        )
        matched = {u for u in found if not view.is_expunged(u)}
        if candidates is None:
            candidates = {u for u in view.uids if not view.is_expunged(u)}
        leaving = {u for u in result.members if u in candidates and u not in matched}
        joined = matched - result.members
        order: list[int] = []
        if joined:
            members = [u for u in result.uids if u not in leaving] + sorted(joined)
            if result.criteria is not None:
                order = await selected.in_order(members, result.criteria)
            else:
                order = sorted(members)
        change = ResultChange()
        if leaving:
            change.removed = result._remove(leaving)
        if joined:
            change.added = result._settle(order, joined)
        return change


def _runs(positions: list[int], order: Sequence[int]) -> list[Run]:
    """Ascending 1-based `positions` of `order` as runs of consecutive positions."""
    runs: list[Run] = []
    for p in positions:
        if runs and runs[-1][0] + len(runs[-1][1]) == p:
            runs[-1][1].append(order[p - 1])
        else:
            runs.append((p, [order[p - 1]]))
    return runs


def _uses_flags(key: SearchKey) -> bool:
    """Whether a flag change can change the key's truth: a flag or keyword key, or MODSEQ
    (RFC 7162 §3.1.5), at any depth. (\\Recent was turned into UIDs by the view.)"""
    match key:
        case SearchFlag() | SearchModseq():
            return True
        case SearchAnd(keys=keys):
            return any(_uses_flags(k) for k in keys)
        case SearchOr(left=left, right=right):
            return _uses_flags(left) or _uses_flags(right)
        case SearchNot(key=inner):
            return _uses_flags(inner)
    return False
