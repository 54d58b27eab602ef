"""`Store.page_uids` and `Store.thread_page` in the store contract, for every backend:
a list page without reading every UID, and the conversations of a mailbox."""

from __future__ import annotations

import pytest

from pillarbox.model import SearchThreadId
from pillarbox.store.errors import NotFound
from tests.store.conftest import Env


async def test_pages_newest_first_by_offset_and_by_uid_bounds(env: Env) -> None:
    s, box = env.store, env.inbox.id
    uids = [
        await env.add(b"m%d" % i, flags=frozenset({"\\Seen"}) if i % 2 else frozenset())
        for i in range(7)
    ]
    first = await s.page_uids(box, 3)
    assert first.uids == tuple(reversed(uids[-3:]))
    assert (first.status.messages, first.status.unseen, first.newer) == (7, 4, 0)
    assert first.status == await s.mailbox_status(box)  # STATUS's counters, all of them
    second = await s.page_uids(box, 3, offset=3)
    assert second.uids == (uids[3], uids[2], uids[1]) and second.newer == 3
    older = await s.page_uids(box, 3, before=first.uids[-1])
    assert older.uids == second.uids and older.newer == 3
    last = await s.page_uids(box, 3, before=uids[1])
    assert last.uids == (uids[0],) and last.newer == 6
    newer = await s.page_uids(box, 3, after=second.uids[0])
    assert newer.uids == first.uids and newer.newer == 0
    assert (await s.page_uids(box, 3, after=uids[-1])).uids == ()
    beyond = await s.page_uids(box, 3, offset=30)
    assert beyond.uids == () and beyond.newer == 7


async def test_pages_of_an_empty_or_missing_mailbox(env: Env) -> None:
    empty = await env.store.page_uids(env.inbox.id, 50)
    assert (empty.uids, empty.status.messages, empty.newer) == ((), 0, 0)
    with pytest.raises(NotFound):
        await env.store.page_uids(99999, 50)
    with pytest.raises(NotFound):
        await env.store.thread_page(99999, 50)


async def test_thread_page_groups_by_threadid_newest_first(env: Env) -> None:
    s, box = env.store, env.inbox.id
    root = await env.add(b"1", message_id="<root@x>", flags=frozenset({"\\Seen"}))
    lone = await env.add(b"2", message_id="<lone@x>")
    reply = await env.add(b"3", message_id="<r1@x>", in_reply_to="<root@x>")
    other = await env.add(b"4", message_id="<other@x>", flags=frozenset({"\\Seen"}))
    threads, more = await s.thread_page(box, 10)
    assert not more
    assert [(t.newest_uid, t.messages, t.unseen) for t in threads] == [
        (other, 1, 0),
        (reply, 2, 1),
        (lone, 1, 1),
    ]
    assert await s.search(box, SearchThreadId(threads[1].thread_id)) == [root, reply]
    first, more = await s.thread_page(box, 2)
    assert more and [t.newest_uid for t in first] == [other, reply]
    page2, more = await s.thread_page(box, 2, offset=2)
    assert not more and [t.newest_uid for t in page2] == [lone]
    assert await s.thread_page(box, 2, offset=5) == ([], False)
