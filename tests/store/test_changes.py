"""The change bus: events after commit, in commit order, carrying their data; Resync on
overflow; no leaked subscriptions."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

from pillarbox.model import (
    Change,
    FlagMode,
    FlagsChanged,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)
from pillarbox.store.changes import InProcessChangeBus
from tests.store.conftest import Env

TIMEOUT = 5.0


async def take(sub: AsyncIterator[Change], n: int) -> list[Change]:
    return [await asyncio.wait_for(anext(sub), TIMEOUT) for _ in range(n)]


async def test_events_carry_their_data(env: Env) -> None:
    """Each mutating call publishes one event with the UIDs, flags and MODSEQ, so a
    subscriber never needs to query."""
    s, acct, box = env.store, env.account.id, env.inbox.id
    sub = env.bus.subscribe(acct)
    other = env.bus.subscribe(acct + 1000)  # another account hears nothing
    try:
        uid = await env.add(flags=frozenset({"\\Seen"}))
        [added] = await take(sub, 1)
        assert isinstance(added, MessagesAdded)
        assert added.mailbox_id == box and added.account_id == acct
        assert [(r.uid, r.flags) for r in added.rows] == [(uid, {"\\Seen"})]

        res = await s.set_flags(box, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
        [flags] = await take(sub, 1)
        assert flags == FlagsChanged(acct, box, res.changed)

        dest = await s.create_mailbox(acct, "Dest")
        assert await take(sub, 1) == [MailboxesChanged(acct)]
        copied = await s.copy(box, [uid], dest.id)
        [copy_ev] = await take(sub, 1)
        assert isinstance(copy_ev, MessagesAdded) and copy_ev.mailbox_id == dest.id
        assert [r.uid for r in copy_ev.rows] == list(copied.dest_uids)
        assert copy_ev.rows[0].flags == {"\\Seen", "\\Deleted"}

        moved = await s.move(dest.id, list(copied.dest_uids), box)
        added_ev, expunged_ev = await take(sub, 2)
        assert isinstance(added_ev, MessagesAdded) and added_ev.mailbox_id == box
        assert [r.uid for r in added_ev.rows] == list(moved.dest_uids)
        assert isinstance(expunged_ev, MessagesExpunged)
        assert expunged_ev.mailbox_id == dest.id and expunged_ev.uids == copied.dest_uids

        gone = await s.expunge(box)
        [exp] = await take(sub, 1)
        assert isinstance(exp, MessagesExpunged) and list(exp.uids) == gone
        assert exp.modseq == (await s.mailbox_status(box)).highestmodseq

        await s.rename_mailbox(acct, "Dest", "Dest2")
        await s.set_subscribed(acct, "Dest2", True)
        await s.delete_mailbox(acct, "Dest2")
        assert await take(sub, 3) == [MailboxesChanged(acct)] * 3
        assert other.__aiter__() is other
    finally:
        await sub.aclose()
        await other.aclose()


async def test_commit_order_under_concurrency(env: Env) -> None:
    """Events of concurrent appends arrive in UID (commit) order with rising MODSEQ."""
    box = env.inbox.id
    sub = env.bus.subscribe(env.account.id)
    try:
        await asyncio.gather(*(env.add(f"m{i}".encode()) for i in range(30)))
        events = await take(sub, 30)
        rows = [r for e in events if isinstance(e, MessagesAdded) for r in e.rows]
        assert [r.uid for r in rows] == list(range(1, 31))
        assert [r.modseq for r in rows] == sorted(r.modseq for r in rows)
        assert box == events[0].mailbox_id  # type: ignore[union-attr]
    finally:
        await sub.aclose()


async def test_store_resync_on_overflow(env: Env) -> None:
    """A subscriber that falls far behind gets one Resync instead of the lost backlog,
    and then, once it took the Resync, new events again."""
    s, box = env.store, env.inbox.id
    await env.add()
    sub = env.bus.subscribe(env.account.id)
    try:
        flags = [frozenset({"\\Seen"}), frozenset({"\\Flagged"})]
        await asyncio.gather(
            *(s.set_flags(box, [1], flags[i % 2], FlagMode.REPLACE) for i in range(3000))
        )
        first = await asyncio.wait_for(anext(sub), TIMEOUT)
        assert first == Resync(env.account.id)
        await env.add()
        after = await asyncio.wait_for(anext(sub), TIMEOUT)
        assert isinstance(after, MessagesAdded) and after.rows[0].uid == 2
    finally:
        await sub.aclose()


async def test_bus_overflow_unit() -> None:
    """Backlog 3: the fourth event replaces the queue by a Resync; later events are
    dropped until the Resync is taken."""
    bus = InProcessChangeBus(backlog=3)
    sub = bus.subscribe(1)
    events = [MailboxesChanged(1)] * 3
    bus.publish(events)
    bus.publish([FlagsChanged(1, 1, ())])
    bus.publish([MailboxesChanged(1)])
    assert await take(sub, 1) == [Resync(1)]
    bus.publish([MessagesExpunged(1, 1, (5,), 9)])
    assert await take(sub, 1) == [MessagesExpunged(1, 1, (5,), 9)]
    await sub.aclose()


async def test_listen_hands_changes_over_inside_publish() -> None:
    """A listening subscriber (an IMAP session) gets what was queued first, then each
    change inside `publish` itself, in order; nothing is left pending, and after
    `aclose` it gets nothing more."""
    bus = InProcessChangeBus(backlog=3)
    sub = bus.subscribe(1)
    bus.publish([MailboxesChanged(1), FlagsChanged(1, 1, ())])
    got: list[Change] = []
    sub.listen(got.append)
    assert got == [MailboxesChanged(1), FlagsChanged(1, 1, ())]
    bus.publish([MessagesExpunged(1, 1, (5,), 9), MailboxesChanged(2)])
    assert got[2:] == [MessagesExpunged(1, 1, (5,), 9)]  # account 2's is not ours
    assert sub.pending() == 0
    await sub.aclose()
    bus.publish([MailboxesChanged(1)])
    assert len(got) == 3


async def test_unsubscribe_on_aclose_and_on_garbage() -> None:
    """aclose ends a waiting iteration and unregisters; a dropped iterator is
    unregistered by garbage collection (no leak)."""
    bus = InProcessChangeBus()
    sub = bus.subscribe(7)
    waiter = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0)  # let the waiter block (a scheduling step, not a timed wait)
    await sub.aclose()
    try:
        await asyncio.wait_for(waiter, TIMEOUT)
        raise AssertionError("iteration should have ended")
    except StopAsyncIteration:
        pass
    assert bus.subscriber_count() == 0

    dropped = bus.subscribe(7)
    assert bus.subscriber_count(7) == 1
    del dropped
    gc.collect()
    assert bus.subscriber_count(7) == 0
    bus.publish([MailboxesChanged(7)])  # nobody listening: no error


async def test_close_ends_subscriptions(env: Env) -> None:
    """Closing the bus ends every subscription's iteration."""
    bus = InProcessChangeBus()
    sub = bus.subscribe(1)
    bus.close()
    assert [c async for c in sub] == []
    late = bus.subscribe(1)
    assert [c async for c in late] == []
