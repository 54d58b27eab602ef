"""Message writes from two nodes at once on one PostgreSQL database (plan §2).

Two `PgStore` instances on one database stand for two nodes. What must hold:
  * UIDs are unique and become visible in ascending order: in commit order (which
    NOTIFY delivery order is, PostgreSQL sends notifications at commit, in commit order),
    the UIDs ascend; a reader never sees a new UID below a UIDNEXT it already saw
    (RFC 9051 §2.3.1.1).
  * The quota check holds under the account lock: two appends that each fit alone but
    not together, racing into two mailboxes of one account, cannot both pass.
  * MOVE A→B and B→A at the same time wait for each other (mailboxes locked in id
    order) instead of deadlocking: no deadlock is ever detected by the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import AppendResult, FlagMode, Mailbox
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import QuotaExceeded
from pillarbox.store.postgres import PgStore, core
from pillarbox.store.postgres.notify import CHANNEL, decode
from tests import pg
from tests.store.conftest import dummy_meta, write_blob

TIMEOUT = 30.0


@dataclass
class Nodes:
    a: PgStore
    b: PgStore
    dsn: str
    inbox: Mailbox
    sent: Mailbox


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    dsn = pg.database(str(tmp_path))
    buses = [InProcessChangeBus(), InProcessChangeBus()]
    a = PgStore(dsn, bus=buses[0], node_id="node-a", pool_min=1, pool_max=12)
    b = PgStore(dsn, bus=buses[1], node_id="node-b", pool_min=1, pool_max=12)
    await a.open()
    await b.open()
    try:
        await a.add_domain("example.org")
        account = await a.add_account("alice@example.org", "$argon2id$dummy")
        inbox = await a.get_mailbox(account.id, "INBOX")
        sent = await a.get_mailbox(account.id, "Sent")
        assert inbox is not None and sent is not None
        yield Nodes(a, b, dsn, inbox, sent)
    finally:
        await a.close()
        await b.close()
        for bus in buses:
            bus.close()


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for `predicate` to hold, checking as often as the loop allows, up to TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def _append(store: PgStore, mailbox_id: int, data: bytes) -> AppendResult:
    blob = await write_blob(store, data)
    return await store.append(mailbox_id, blob, dummy_meta(data))


async def test_concurrent_appends_ascend_in_commit_order(nodes: Nodes) -> None:
    """20 appends split over two nodes: UIDs 1..20, each once, ascending in commit
    order; a reader looping SELECT never sees a new UID below a UIDNEXT it saw."""
    box = nodes.inbox.id
    listener = await asyncpg.connect(nodes.dsn)
    committed: list[int] = []  # MODSEQs of 'a' notices, in commit order
    listener_done = asyncio.Event()

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        notice = decode(payload)
        if notice is not None and notice.kind == "a" and notice.mailbox_id == box:
            committed.append(notice.modseq)
            if len(committed) == 20:
                listener_done.set()

    await listener.add_listener(CHANNEL, heard)
    stop = asyncio.Event()
    violations: list[str] = []
    snapshots = 0

    async def reader() -> None:
        nonlocal snapshots
        seen: set[int] = set()
        uidnext_seen = 1
        while not stop.is_set():
            uids, status, _ = await nodes.b.select_snapshot(box)
            snapshots += 1
            if uids != sorted(set(uids)):
                violations.append(f"not ascending: {uids}")
            new = [u for u in uids if u not in seen]
            below = [u for u in new if u < uidnext_seen]
            if below:
                violations.append(f"new UIDs {below} below UIDNEXT {uidnext_seen} seen before")
            if uids and status.uidnext <= uids[-1]:
                violations.append(f"UIDNEXT {status.uidnext} not above {uids[-1]}")
            seen.update(uids)
            uidnext_seen = max(uidnext_seen, status.uidnext)
            await asyncio.sleep(0)

    watching = asyncio.create_task(reader())
    try:
        results = await asyncio.gather(
            *(
                _append(nodes.a if i % 2 else nodes.b, box, f"Subject: {i}\r\n\r\n{i}\r\n".encode())
                for i in range(20)
            )
        )
        await asyncio.wait_for(listener_done.wait(), TIMEOUT)
    finally:
        stop.set()
        await watching
        await listener.close()
    assert violations == []
    assert snapshots > 0
    assert sorted(r.uid for r in results) == list(range(1, 21))
    uid_of = {r.modseq: r.uid for r in results}
    assert len(uid_of) == 20  # one MODSEQ each
    assert committed == sorted(committed)  # MODSEQs ascend in commit order...
    assert [uid_of[m] for m in committed] == list(range(1, 21))  # ...and so do UIDs
    assert await nodes.a.uids(box) == list(range(1, 21))
    status = await nodes.b.mailbox_status(box)
    assert status.uidnext == 21 and status.messages == 20


async def _waiting_on_locks(dsn: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        conn = await asyncpg.connect(dsn)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        finally:
            await conn.close()
        return int(n) >= count

    return check


async def test_quota_race_lets_one_through(nodes: Nodes) -> None:
    """Two appends from two nodes into two mailboxes of one account, each under the
    quota alone, not together: held at the account row until both wait there, then
    let go, exactly one is stored and the other is QuotaExceeded."""
    data = b"Subject: q\r\n\r\n" + b"x" * 100
    await nodes.a.set_quota("alice@example.org", len(data) * 3 // 2)
    blob_a = await write_blob(nodes.a, data)
    blob_b = await write_blob(nodes.b, data)
    holder = await asyncpg.connect(nodes.dsn)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            "SELECT 1 FROM accounts WHERE address = 'alice@example.org' FOR UPDATE"
        )
        racing = [
            asyncio.create_task(nodes.a.append(nodes.inbox.id, blob_a, dummy_meta(data))),
            asyncio.create_task(nodes.b.append(nodes.sent.id, blob_b, dummy_meta(data))),
        ]
        await until(await _waiting_on_locks(nodes.dsn, 2), "both appends at the account lock")
        await tx.commit()
        outcomes = await asyncio.gather(*racing, return_exceptions=True)
    finally:
        await holder.close()
    stored = [o for o in outcomes if isinstance(o, AppendResult)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert (len(stored), len(refused)) == (1, 1), outcomes
    assert await nodes.b.quota_usage(nodes.inbox.account_id) == len(data)
    messages = len(await nodes.a.uids(nodes.inbox.id)) + len(await nodes.a.uids(nodes.sent.id))
    assert messages == 1


async def test_quota_race_on_one_mailbox(nodes: Nodes) -> None:
    """The same race without help: many appends into one mailbox at once from two
    nodes store exactly as many as the message limit allows."""
    await nodes.a.set_quota("alice@example.org", None, 5)
    outcomes = await asyncio.gather(
        *(
            _append(nodes.a if i % 2 else nodes.b, nodes.inbox.id, b"Subject: m\r\n\r\nm\r\n")
            for i in range(12)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 5
    assert sum(isinstance(o, QuotaExceeded) for o in outcomes) == 7
    assert await nodes.b.uids(nodes.inbox.id) == [1, 2, 3, 4, 5]


async def test_moves_both_ways_do_not_deadlock(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MOVE A→B on one node and B→A on the other, over and over, at the same time:
    every message ends up somewhere exactly once, and no deadlock happened (with the
    store's retries of deadlocks turned off, one would fail its MOVE)."""
    monkeypatch.setattr(core, "RETRIES", 0)
    inbox, sent = nodes.inbox.id, nodes.sent.id
    for i in range(10):
        await _append(nodes.a, inbox, f"Subject: in {i}\r\n\r\nx\r\n".encode())
        await _append(nodes.b, sent, f"Subject: sent {i}\r\n\r\nx\r\n".encode())
    # a flag on each, so that the moves carry keywords too (more rows, longer locks)
    await nodes.a.set_flags(inbox, await nodes.a.uids(inbox), frozenset({"$A"}), FlagMode.ADD)
    await nodes.b.set_flags(sent, await nodes.b.uids(sent), frozenset({"$B"}), FlagMode.ADD)

    async def shuttle(store: PgStore, src: int, dst: int) -> int:
        moved = 0
        for _ in range(15):
            uids = await store.uids(src)
            if uids:
                result = await store.move(src, uids[:3], dst)
                moved += len(result.dest_uids)
            else:
                await asyncio.sleep(0)
        return moved

    moved = await asyncio.gather(
        shuttle(nodes.a, inbox, sent),
        shuttle(nodes.b, sent, inbox),
        shuttle(nodes.a, sent, inbox),
        shuttle(nodes.b, inbox, sent),
    )
    assert sum(moved) > 0
    total = len(await nodes.a.uids(inbox)) + len(await nodes.a.uids(sent))
    assert total == 20
    usage = await nodes.b.quota(nodes.inbox.account_id)
    assert usage.messages_used == 20  # the triggers' counters agree
