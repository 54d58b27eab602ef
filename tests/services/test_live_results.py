"""Live results (RFC 5267 §4.3 update contexts) on a real SQLite store and change bus.

Pins what re-evaluation costs, counted at the store: nothing when no change could affect
a result (a flag change under a key without flags, a command boundary with nothing new);
one search query per result for any number of new messages or flag changes together,
restricted to those messages; none for an expunge; one whole-mailbox query after a lost
change feed. And what it says: removal positions before the removal (highest first),
insertion positions after it (lowest first), in sort order for a sorted result, with
runs of consecutive positions kept together; a cancelled result is not reported; the
sixth result is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pillarbox.model import FlagMode, Resync, SearchAnd, SearchFlag, SearchHeader, SearchKey
from pillarbox.model.sorting import SortCriterion
from pillarbox.services.live_results import MAX_LIVE_RESULTS, LiveResult, LiveResults
from pillarbox.services.mailbox import AccountMailboxes, NewMessage
from pillarbox.services.selected import SelectedMailbox
from pillarbox.store.sqlite import SqliteStore


class CountingStore:
    """The real store, with its search and sort-column reads counted."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.searches: list[Any] = []
        self.sort_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        self.searches.append(key)
        return await self._store.search(mailbox_id, key)

    async def sort_rows(self, mailbox_id: int, uids: Sequence[int], **kw: Any) -> Any:
        self.sort_reads += 1
        return await self._store.sort_rows(mailbox_id, uids, **kw)


class World:
    """Alice's INBOX selected through a counting store, fed by the real change bus."""

    def __init__(self, store: SqliteStore, mbx: AccountMailboxes) -> None:
        self.store = store
        self.mbx = mbx
        self.counting = CountingStore(store)
        self.live = LiveResults()
        self.selected: SelectedMailbox
        self.deaf = False

    async def open(self) -> None:
        inbox = await self.mbx.get("INBOX")
        self.selected = SelectedMailbox(self.counting, inbox, read_only=False)  # type: ignore[arg-type]
        sub = self.store.bus.subscribe(inbox.account_id)
        sub.listen(self._record)  # type: ignore[attr-defined]
        self._sub = sub
        await self.selected.open()

    def _record(self, change: Any) -> None:
        if self.deaf:
            return
        self.selected.view.record(change)
        self.live.record(change, self.selected.mailbox.id)

    async def add(self, subject: str, *flags: str) -> int:
        msg = f"From: a@example.test\r\nSubject: {subject}\r\n\r\nx\r\n".encode()
        inbox = await self.mbx.get("INBOX")
        result = await self.mbx.append(inbox, NewMessage(msg, frozenset(flags)))
        return result.uid

    async def boundary(self) -> list[tuple[str, list[Any], list[Any]]]:
        """What a command end does: apply the view's updates, then refresh; the queries
        counted are the refresh's own."""
        self.selected.view.take_updates(allow_expunge=True)
        self.counting.searches.clear()
        self.counting.sort_reads = 0
        changes = await self.live.refresh(self.selected)
        return [(name, c.removed, c.added) for name, _, c in changes]

    async def keep(self, name: str, key: SearchKey, criteria: Any = None) -> LiveResult:
        resolved = self.selected.resolve_search(key, [])
        uids = await self.selected.matching(resolved)
        if criteria is not None:
            uids = await self.selected.in_order(uids, criteria)
        live = LiveResult(resolved, uids, self.selected.view.max_uid, criteria=criteria)
        assert self.live.add(name, live)
        return live


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    st = SqliteStore(tmp_path / "data")
    await st.open()
    await st.add_domain("example.test")
    await st.add_account("alice@example.test", "x")
    account = await st.get_account("alice@example.test")
    assert account is not None
    w = World(st, AccountMailboxes(st, account.id))
    yield w
    await st.close()


UNSEEN = SearchAnd((SearchFlag("\\Seen", False),))


async def test_costs_nothing_without_a_relevant_change(world: World) -> None:
    """A flag change cannot change a header-only key: no query; new messages: one."""
    for s in ("apple", "pear", "apple pie"):
        await world.add(s)
    await world.open()
    await world.keep("A", SearchHeader("subject", "apple"))
    await world.selected.set_flags([1, 2, 3], frozenset({"\\Seen"}), FlagMode.ADD)
    assert await world.boundary() == []
    assert world.counting.searches == []
    assert await world.boundary() == [] and world.counting.searches == []
    u4, _u5, u6 = [await world.add(s) for s in ("apple tart", "plum", "apple jam")]
    assert await world.boundary() == [("A", [], [(3, [u4, u6])])]  # one run: 3 and 4
    assert len(world.counting.searches) == 1


async def test_flag_changes_one_query_for_all(world: World) -> None:
    """Three separate flag changes, one query restricted to those messages."""
    uids = [await world.add(f"m{i}") for i in range(1, 7)]
    await world.open()
    await world.keep("U", UNSEEN)
    for uid in (uids[1], uids[2], uids[4]):
        await world.selected.set_flags([uid], frozenset({"\\Seen"}), FlagMode.ADD)
    assert await world.boundary() == [("U", [(5, [uids[4]]), (2, uids[1:3])], [])]
    assert len(world.counting.searches) == 1
    assert "SearchUids" in repr(world.counting.searches[0])  # not the whole mailbox
    await world.selected.set_flags([uids[2]], frozenset({"\\Seen"}), FlagMode.REMOVE)
    assert await world.boundary() == [("U", [], [(2, [uids[2]])])]


async def test_sorted_positions(world: World) -> None:
    """A sorted result reports insertions at their place in sort order: one search and
    one sort-column read; removals need neither."""
    for s in ("b", "d", "f"):
        await world.add(s)
    await world.open()
    by_subject = (SortCriterion("SUBJECT"),)
    live = await world.keep("S", SearchAnd(()), by_subject)
    a, e = await world.add("a"), await world.add("e")
    assert await world.boundary() == [("S", [], [(1, [a]), (4, [e])])]  # a b d e f
    assert (len(world.counting.searches), world.counting.sort_reads) == (1, 1)
    assert live.uids == [a, 1, 2, e, 3]
    removed = world.live.expunged([2, a])
    assert [(n, c.removed, c.added) for n, _, c in removed] == [("S", [(3, [2]), (1, [a])], [])]
    assert live.uids == [1, e, 3]


async def test_expunge_and_resync(world: World) -> None:
    """An expunge costs no query; a lost change feed costs one query over everything."""
    uids = [await world.add(f"m{i}") for i in range(1, 5)]
    await world.open()
    await world.keep("U", UNSEEN)
    await world.selected.set_flags([uids[1]], frozenset({"\\Deleted"}), FlagMode.ADD)
    removed = await world.selected.expunge([uids[1]])
    world.counting.searches.clear()
    assert [c.removed for _, _, c in world.live.expunged(removed.uids)] == [[(2, [uids[1]])]]
    assert world.counting.searches == []
    assert await world.boundary() == []  # the flagged message is gone: not a candidate
    world.deaf = True  # the feed loses the next change
    await world.selected.set_flags([uids[0]], frozenset({"\\Seen"}), FlagMode.ADD)
    world.deaf = False
    world.live.record(Resync(world.selected.mailbox.account_id), world.selected.mailbox.id)
    assert await world.boundary() == [("U", [(1, [uids[0]])], [])]
    assert len(world.counting.searches) == 1
    assert "SearchUids" not in repr(world.counting.searches[0])


async def test_cancel_and_limit(world: World) -> None:
    await world.add("m")
    await world.open()
    for i in range(MAX_LIVE_RESULTS):
        await world.keep(f"T{i}", UNSEEN)
    extra = LiveResult(UNSEEN, [], 0)
    assert not world.live.add("late", extra) and "late" not in world.live
    world.live.cancel("T0")
    await world.add("n")
    assert [name for name, _, _ in await world.boundary()] == [f"T{i}" for i in range(1, 5)]
