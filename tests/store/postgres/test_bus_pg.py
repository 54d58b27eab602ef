"""The change relay across nodes (`store.postgres.bus.PgChangeRelay`): two `PgStore`s on
one database, as two nodes are; a write through store B must reach the subscribers of
store A's bus as the events a local write publishes, also across a lost LISTEN
connection. Pure classification (`events_for`) is tested without a database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import (
    Account,
    Change,
    FlagMode,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)
from pillarbox.services.view import SelectedView
from pillarbox.store.changes import InProcessChangeBus, Subscription
from pillarbox.store.postgres import PgStore, notify
from pillarbox.store.postgres.bus import (
    Local,
    LocalOrder,
    Pending,
    PgChangeRelay,
    classify,
    events_for,
    without_local,
)
from tests import pg
from tests.store.conftest import dummy_meta, write_blob

WAIT = 5.0  # seconds a relayed event may take here (a loaded 2-core machine; ~20 ms idle)


def row(uid: int, modseq: int, *flags: str) -> FlagRow:
    return FlagRow(uid, frozenset(flags), modseq)


# --- classification, no database ---------------------------------------------------------


def events(
    rows: list[FlagRow],
    gone: list[int],
    *,
    since: int,
    uidnext: int | None,
    pending: Pending | None = None,
    local: Local | None = None,
) -> list[Change]:
    read = classify(rows, gone, since=since, uidnext=uidnext, pending=pending)
    return events_for(1, 2, without_local(read, local), since=since, pending=pending)


def test_known_uidnext_splits_new_messages_from_flag_changes() -> None:
    rows = [row(3, 11, "\\Seen"), row(7, 12), row(8, 12)]
    assert events(rows, [5], since=10, uidnext=7) == [
        MessagesAdded(1, 2, (row(7, 12), row(8, 12))),
        FlagsChanged(1, 2, (row(3, 11, "\\Seen"),)),
        MessagesExpunged(1, 2, (5,), 11),  # lowest possible: never above an unreported one
    ]


def test_what_the_local_bus_carried_is_not_repeated_nor_undone() -> None:
    # This node's store published: UID 3's flags at 11 (the row read back), UID 4's at 14
    # (newer than the row read back at 12), UID 9 new at 13 then flagged by another node
    # at 15, UID 5 expunged at 16 (read back as it was at 12); UID 7 is another node's new
    # message, flagged here at 14 after the read.
    local = Local()
    local.rows = {
        3: row(3, 11, "\\Seen"),
        4: row(4, 14),
        9: row(9, 13),
        7: row(7, 14, "\\Flagged"),
    }
    local.added = {9}
    local.expunged = {5: 16}
    rows = [
        row(3, 11, "\\Seen"),
        row(4, 12, "\\Answered"),
        row(5, 12, "\\Deleted"),
        row(6, 12, "\\Draft"),
        row(7, 12),
        row(9, 15, "\\Seen"),
    ]
    assert events(rows, [5], since=10, uidnext=7, local=local) == [
        MessagesAdded(1, 2, (row(7, 14, "\\Flagged"),)),
        FlagsChanged(1, 2, (row(6, 12, "\\Draft"), row(9, 15, "\\Seen"))),
    ]


def test_first_notice_places_new_messages_by_its_transaction() -> None:
    # Followed from this window on: the `a` at MODSEQ 12 wrote UIDs 7 and 8; UID 7's flags
    # changed again at 13 (so it may be new or old: both), UID 3's at 11 (old).
    pending = Pending()
    for kind, modseq in (("f", 11), ("a", 12), ("f", 13), ("x", 14)):
        pending.note(kind, modseq)
    rows = [row(3, 11), row(7, 13, "\\Flagged"), row(8, 12)]
    assert events(rows, [4], since=10, uidnext=None, pending=pending) == [
        MessagesAdded(1, 2, (row(7, 13, "\\Flagged"), row(8, 12))),
        FlagsChanged(1, 2, (row(3, 11), row(7, 13, "\\Flagged"))),
        MessagesExpunged(1, 2, (4,), 14),
    ]


def test_rows_that_cannot_be_placed_go_out_as_both() -> None:
    pending = Pending()
    pending.note("a", 12)  # every row of that transaction changed again since
    rows = [row(3, 11), row(7, 13)]
    both = [MessagesAdded(1, 2, (row(7, 13),)), FlagsChanged(1, 2, (row(3, 11), row(7, 13)))]
    assert events(rows, [], since=10, uidnext=None, pending=pending) == both
    only_flags = Pending()
    only_flags.note("f", 11)
    assert events(rows, [], since=10, uidnext=None, pending=only_flags) == both


async def test_local_changes_wait_for_the_relay_to_fill_a_gap() -> None:
    bus = InProcessChangeBus()
    order = LocalOrder(bus, hold=30)
    sub = bus.subscribe(1)
    order.follow(2, 10)
    order.publish([MessagesAdded(1, 2, (row(8, 12),))])  # 11 is another node's: wait
    order.publish([FlagsChanged(1, 2, (row(3, 13, "\\Seen"),))])  # behind it, in order
    order.publish([MessagesAdded(1, 9, (row(1, 5),))])  # a mailbox not followed: at once
    assert await next_change(sub) == MessagesAdded(1, 9, (row(1, 5),))
    assert order.held() == 2
    bus.publish([MessagesAdded(1, 2, (row(7, 11),))])  # the relay's read-back of 11...
    order.advance(2, 10, 11)  # ...covering 11
    assert [await next_change(sub) for _ in range(3)] == [
        MessagesAdded(1, 2, (row(7, 11),)),
        MessagesAdded(1, 2, (row(8, 12),)),
        FlagsChanged(1, 2, (row(3, 13, "\\Seen"),)),
    ]
    assert order.held() == 0 and sub.pending() == 0
    order.close()


async def test_a_local_change_a_read_back_covered_is_not_handed_on() -> None:
    bus = InProcessChangeBus()
    order = LocalOrder(bus, hold=30)
    sub = bus.subscribe(1)
    order.follow(2, 10)
    order.advance(2, 10, 12)  # the relay published rows changed at 11 and 12 as at 12
    order.publish([FlagsChanged(1, 2, (row(3, 11, "\\Seen"),))])  # older than that
    order.publish([FlagsChanged(1, 2, (row(3, 13),))])
    assert await next_change(sub) == FlagsChanged(1, 2, (row(3, 13),))
    assert sub.pending() == 0
    order.close()


async def test_following_starts_after_what_this_node_already_handed_on() -> None:
    """The relay reads a mailbox (MODSEQ 10), this node commits and publishes 11 and 12
    before the relay calls `follow(…, 10)`: the next local change, 13, is no gap and goes
    on at once (it used to wait out the hold: a session's final NOOP saw a stale view)."""
    bus = InProcessChangeBus()
    order = LocalOrder(bus, hold=30)
    sub = bus.subscribe(1)
    order.publish([MessagesAdded(1, 2, (row(8, 11),))])
    order.publish([MessagesExpunged(1, 2, (8,), 12)])
    order.follow(2, 10)
    order.publish([FlagsChanged(1, 2, (row(3, 13, "\\Seen"),))])
    assert order.held() == 0
    assert [await next_change(sub) for _ in range(3)] == [
        MessagesAdded(1, 2, (row(8, 11),)),
        MessagesExpunged(1, 2, (8,), 12),
        FlagsChanged(1, 2, (row(3, 13, "\\Seen"),)),
    ]
    order.close()


async def test_a_gap_nobody_fills_holds_a_change_back_only_so_long() -> None:
    bus = InProcessChangeBus()
    order = LocalOrder(bus, hold=0.05)
    sub = bus.subscribe(1)
    order.follow(2, 10)
    order.publish([MessagesAdded(1, 2, (row(8, 12),))])
    assert order.held() == 1
    assert await next_change(sub) == MessagesAdded(1, 2, (row(8, 12),))
    order.close()


# --- two stores on one database -------------------------------------------------------------


@dataclass
class Nodes:
    a: PgStore
    b: PgStore
    bus_a: InProcessChangeBus
    relay: PgChangeRelay
    dsn: str
    account: Account
    inbox: Mailbox

    async def add(self, store: PgStore, mailbox_id: int | None = None) -> int:
        data = b"Subject: hi\r\n\r\nhello\r\n"
        blob = await write_blob(store, data)
        result = await store.append(
            mailbox_id or self.inbox.id,
            blob,
            dummy_meta(data),
            frozenset(),
            datetime(2024, 5, 17, 10, 0, tzinfo=UTC),
        )
        return result.uid


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    dsn = pg.database(str(tmp_path / "db"))
    # Pools open all their connections at once: the reconnect tests forbid new ones.
    bus_a, bus_b = InProcessChangeBus(), InProcessChangeBus()
    order = LocalOrder(bus_a)  # as app.py sets node A up
    a = PgStore(dsn, bus=order, node_id="node-a", pool_min=3, pool_max=4)
    b = PgStore(dsn, bus=bus_b, node_id="node-b", pool_min=3, pool_max=4)
    await a.open()
    await b.open()
    relay = PgChangeRelay(a, bus_a, scan_interval=0.05, order=order)
    await relay.start()
    try:
        await b.add_domain("example.org")
        account = await b.add_account("alice@example.org", "$argon2id$dummy")
        inbox = await b.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        yield Nodes(a, b, bus_a, relay, dsn, account, inbox)
    finally:
        await relay.stop()
        await a.close()
        await b.close()
        bus_a.close()
        bus_b.close()


async def next_change(sub: Subscription, timeout: float = WAIT) -> Change:
    return await asyncio.wait_for(sub.__anext__(), timeout)


async def until(condition: Callable[[], Awaitable[bool] | bool], timeout: float = WAIT) -> None:
    """Wait for a condition (polled on the loop), failing after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def added_uids(sub: Subscription, count: int) -> list[int]:
    """UIDs of MessagesAdded events until `count` distinct ones came (repeats allowed)."""
    uids: set[int] = set()
    while len(uids) < count:
        change = await next_change(sub)
        if isinstance(change, MessagesAdded):
            uids.update(r.uid for r in change.rows)
    return sorted(uids)


async def test_writes_on_b_reach_subscribers_on_a(nodes: Nodes) -> None:
    sub = nodes.bus_a.subscribe(nodes.account.id)
    uid = await nodes.add(nodes.b)
    change = await next_change(sub)
    assert isinstance(change, MessagesAdded)
    assert (change.account_id, change.mailbox_id) == (nodes.account.id, nodes.inbox.id)
    assert [r.uid for r in change.rows] == [uid]

    result = await nodes.b.set_flags(nodes.inbox.id, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    change = await next_change(sub)
    assert isinstance(change, FlagsChanged)
    assert [(r.uid, r.flags, r.modseq) for r in change.rows] == [
        (uid, frozenset({"\\Deleted"}), result.changed[0].modseq)
    ]

    assert await nodes.b.expunge(nodes.inbox.id) == [uid]
    change = await next_change(sub)
    assert isinstance(change, MessagesExpunged)
    assert change.uids == (uid,)
    assert change.modseq == (await nodes.b.mailbox_status(nodes.inbox.id)).highestmodseq

    await nodes.b.create_mailbox(nodes.account.id, "Projects")
    assert await next_change(sub) == MailboxesChanged(nodes.account.id)
    assert sub.pending() == 0


async def test_own_node_and_other_accounts_are_not_relayed(nodes: Nodes) -> None:
    other = await nodes.b.add_account("bob@example.org", "$argon2id$dummy")
    other_inbox = await nodes.b.get_mailbox(other.id, "INBOX")
    assert other_inbox is not None
    sub = nodes.bus_a.subscribe(nodes.account.id)
    await until(lambda: nodes.relay.following(nodes.account.id))
    mine = await nodes.add(nodes.a)  # published by store A itself, at once
    change = await next_change(sub)
    assert isinstance(change, MessagesAdded) and [r.uid for r in change.rows] == [mine]
    await nodes.add(nodes.b, other_inbox.id)  # nobody here listens to bob
    await mark(nodes)
    # Notices arrive in commit order: a relayed copy of A's own write would come first.
    assert await next_change(sub) == Resync(nodes.account.id)
    assert sub.pending() == 0
    assert not nodes.relay.following(other.id)


async def test_flags_set_here_are_not_relayed_back(nodes: Nodes) -> None:
    sub = nodes.bus_a.subscribe(nodes.account.id)
    await until(lambda: nodes.relay.following(nodes.account.id))
    first, second = await nodes.add(nodes.b), await nodes.add(nodes.b)
    assert await added_uids(sub, 2) == [first, second]
    await nodes.a.set_flags(nodes.inbox.id, [first], frozenset({"\\Seen"}), FlagMode.ADD)
    assert sub.pending() == 1  # no MODSEQ gap: handed on at once (LocalOrder holds nothing)
    change = await next_change(sub)  # store A's own event
    assert isinstance(change, FlagsChanged) and [r.uid for r in change.rows] == [first]
    await nodes.b.set_flags(nodes.inbox.id, [second], frozenset({"\\Seen"}), FlagMode.ADD)
    change = await next_change(sub)
    assert isinstance(change, FlagsChanged) and [r.uid for r in change.rows] == [second]
    assert sub.pending() == 0


async def mark(nodes: Nodes, account_id: int | None = None) -> None:
    """A notice from "node-b" that needs no read: `Resync(account)` (alice's unless
    given) marks a point in the notice order."""
    account = nodes.account.id if account_id is None else account_id
    admin = await asyncpg.connect(nodes.dsn)
    try:
        payload = f"v1|node-b|{account}|0|r|0"
        await admin.execute("SELECT pg_notify($1, $2)", notify.CHANNEL, payload)
    finally:
        await admin.close()


async def test_undecodable_payloads_are_ignored(nodes: Nodes) -> None:
    sub = nodes.bus_a.subscribe(nodes.account.id)
    admin = await asyncpg.connect(nodes.dsn)
    try:
        account = nodes.account.id
        for payload in ("nonsense", f"v9|node-b|{account}|0|r|0", f"v1|node-b|{account}|0|r|x"):
            await admin.execute("SELECT pg_notify($1, $2)", notify.CHANNEL, payload)
        await admin.execute(
            "SELECT pg_notify($1, $2)", notify.CHANNEL, f"v1|node-b|{account}|0|r|0"
        )
    finally:
        await admin.close()
    assert await next_change(sub) == Resync(nodes.account.id)
    assert sub.pending() == 0


async def test_notices_of_one_window_are_read_back_once(nodes: Nodes) -> None:
    # Three messages written while nobody here listened, then their notices again in one
    # transaction: they arrive together, and come out as one read and one event.
    other = await nodes.b.add_account("bob@example.org", "$argon2id$dummy")
    bob = nodes.bus_a.subscribe(other.id)
    uids = [await nodes.add(nodes.b) for _ in range(3)]
    status = await nodes.b.mailbox_status(nodes.inbox.id)
    # Once bob's marker is through, the relay has seen (and dropped) those notices.
    await mark(nodes, other.id)
    assert await next_change(bob) == Resync(other.id)
    sub = nodes.bus_a.subscribe(nodes.account.id)
    await until(lambda: nodes.relay.following(nodes.account.id))
    base = status.highestmodseq - 3
    payloads = [
        notify.encode(notify.Notice("node-b", nodes.account.id, nodes.inbox.id, "a", base + i))
        for i in (1, 2, 3)
    ]
    admin = await asyncpg.connect(nodes.dsn)
    try:
        async with admin.transaction():
            for payload in payloads:
                await admin.execute("SELECT pg_notify($1, $2)", notify.CHANNEL, payload)
    finally:
        await admin.close()
    change = await next_change(sub)
    assert isinstance(change, MessagesAdded)
    assert [r.uid for r in change.rows] == uids
    assert sub.pending() == 0


async def test_relay_reconnects_and_catches_up(nodes: Nodes) -> None:
    sub = nodes.bus_a.subscribe(nodes.account.id)
    first = await nodes.add(nodes.b)
    assert await added_uids(sub, 1) == [first]
    database = nodes.dsn.rsplit("/", 1)[1]
    pid = nodes.relay.backend_pid()
    admin = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        # No new connection to the database until the change below is made: the relay
        # cannot be back before it, the stores keep their pooled connections.
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await until(lambda: not nodes.relay.connected)
            second = await nodes.add(nodes.b)
            await nodes.b.set_flags(nodes.inbox.id, [first], frozenset({"\\Seen"}), FlagMode.ADD)
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    seen: dict[int, frozenset[str]] = {}
    new: set[int] = set()
    while second not in new or "\\Seen" not in seen.get(first, frozenset()):
        change = await next_change(sub)
        assert not isinstance(change, Resync), "a reconnect must not reload every session"
        if isinstance(change, MessagesAdded):
            new.update(r.uid for r in change.rows)
        elif isinstance(change, FlagsChanged):
            seen.update((r.uid, r.flags) for r in change.rows)
    assert nodes.relay.connects == 2
    assert nodes.relay.backend_pid() not in (None, pid)
    # And it listens again: a change after the reconnect arrives as usual.
    third = await nodes.add(nodes.b)
    assert await added_uids(sub, 1) == [third]


async def test_a_vanished_mailbox_after_an_outage_resyncs_its_account(nodes: Nodes) -> None:
    await nodes.b.create_mailbox(nodes.account.id, "Projects")
    sub = nodes.bus_a.subscribe(nodes.account.id)
    await until(lambda: nodes.relay.following(nodes.account.id))
    database = nodes.dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            pid = nodes.relay.backend_pid()
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await until(lambda: not nodes.relay.connected)
            await nodes.b.delete_mailbox(nodes.account.id, "Projects")
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    got: list[Change] = []
    while Resync(nodes.account.id) not in got:
        got.append(await next_change(sub))
    assert MailboxesChanged(nodes.account.id) in got


async def test_an_account_not_followed_yet_resyncs_after_an_outage(nodes: Nodes) -> None:
    # A relay whose look at the subscribed accounts came before alice's subscriber, and
    # will not come again in this test: nothing tells it what alice missed while down.
    bus = InProcessChangeBus()
    relay = PgChangeRelay(nodes.a, bus, scan_interval=3600)
    await relay.start()
    try:
        await until(lambda: relay.scans == 1)
        sub = bus.subscribe(nodes.account.id)
        assert not relay.following(nodes.account.id)
        database = nodes.dsn.rsplit("/", 1)[1]
        admin = await asyncpg.connect(pg.ADMIN_DSN)
        try:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                pid = relay.backend_pid()
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                await until(lambda: not relay.connected)
                await nodes.add(nodes.b)
            finally:
                await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()
        assert await next_change(sub) == Resync(nodes.account.id)
        assert relay.following(nodes.account.id)
    finally:
        await relay.stop()
        bus.close()


@pytest.mark.parametrize("seed", [17, 18, 19])
async def test_a_session_view_fed_by_the_relay_ends_as_the_store(nodes: Nodes, seed: int) -> None:
    """Random writes on both nodes while a session on A subscribes half-way (the relay
    meets the account mid-stream): its view (`SelectedView`, the IMAP session's) ends
    with the store's UIDs, and the newest flags it heard are the store's."""
    rng = random.Random(seed)
    box = nodes.inbox.id
    halfway = asyncio.Event()

    async def writes() -> None:
        live: list[int] = []
        for n in range(60):
            if n == 20:
                halfway.set()
            store = rng.choice([nodes.b, nodes.b, nodes.a])
            op = rng.random()
            if op < 0.45 or not live:
                live.append(await nodes.add(store))
            elif op < 0.85:
                flag = rng.choice(["\\Seen", "\\Flagged", "$label"])
                mode = rng.choice([FlagMode.ADD, FlagMode.REMOVE])
                await store.set_flags(box, [rng.choice(live)], frozenset({flag}), mode)
            else:
                uid = live.pop(rng.randrange(len(live)))
                await store.set_flags(box, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
                assert await store.expunge(box, [uid]) == [uid]

    writer = asyncio.create_task(writes())
    await halfway.wait()
    sub = nodes.bus_a.subscribe(nodes.account.id)
    view = SelectedView(nodes.inbox, read_only=True, loading=True)
    heard: dict[int, FlagRow] = {}

    def hear(rows: tuple[FlagRow, ...] | list[FlagRow]) -> None:
        for r in rows:
            if r.uid not in heard or r.modseq > heard[r.uid].modseq:
                heard[r.uid] = r

    async def pump() -> None:
        async for change in sub:
            assert not isinstance(change, Resync), change
            view.record(change)
            if isinstance(change, MessagesAdded | FlagsChanged):
                hear(change.rows)

    reader = asyncio.create_task(pump())
    try:
        await view.load(nodes.a)
        hear(await nodes.a.fetch_flags(box, list(view.uids)))
        await writer
        uids = await nodes.a.uids(box)
        flags = {r.uid: r.flags for r in await nodes.a.fetch_flags(box, uids)}

        def caught_up() -> bool:
            view.take_updates(allow_expunge=True)
            return list(view.uids) == uids and all(
                u in heard and heard[u].flags == f for u, f in flags.items()
            )

        try:
            await until(caught_up)
        except AssertionError:
            wrong = {
                u: (heard.get(u), f)
                for u, f in flags.items()
                if u not in heard or heard[u].flags != f
            }
            raise AssertionError(f"view {list(view.uids)}, store {uids}; {wrong}") from None
    finally:
        writer.cancel()
        reader.cancel()
        await sub.aclose()
