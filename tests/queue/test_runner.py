"""queue.runner end to end on loopback: MX lookup against a DNS server on 127.0.0.1,
real SMTP peers on 127.0.0.2/127.0.0.3, outcomes recorded before the entry is settled,
one connection reused for several messages, deferral to the next MX, the
private-network refusal, a relay with required STARTTLS, and DSNs to a local sender.
The queue is the real `QueueService` on SQLite, watched (`tests.watched_queue`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pillarbox.app import build_services
from pillarbox.config import Config, DeliveryConfig, DnsConfig, ServerConfig
from pillarbox.model import QueuedMessage, RecipientOutcome, RecipientState
from pillarbox.queue.runner import QueueRunner
from pillarbox.server.tls import ensure_self_signed, server_context
from pillarbox.services.outbound import OutboundService
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.sqlite import SqliteStore
from tests.dnsserver import DnsServer
from tests.queue.peer import Peer, load_zone, refused_port
from tests.watched_queue import WatchedQueue

ZONE = [
    "remote.test. 60 IN MX 10 mx1.remote.test.",
    "remote.test. 60 IN MX 20 mx2.remote.test.",
    "mx1.remote.test. 60 IN A 127.0.0.2",
    "mx2.remote.test. 60 IN A 127.0.0.3",
    "single.test. 60 IN MX 10 mx1.remote.test.",
]


@dataclass
class World:
    store: SqliteStore
    dns: DnsServer
    queue: WatchedQueue
    port: int  # the port both MX peers listen on


@pytest.fixture
async def world(tmp_path: Path, dns_server: DnsServer) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "data")
    await store.open()
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", "not-a-real-hash")
    load_zone(dns_server, ZONE)
    yield World(store, dns_server, WatchedQueue(store), refused_port("127.0.0.2"))
    await store.close()


def make_runner(world: World, **delivery: Any) -> QueueRunner:
    config = Config(
        server=ServerConfig(hostname="mail.example.test"),
        delivery=dataclasses.replace(
            DeliveryConfig(
                port=world.port,
                allow_private_networks=True,
                connect_timeout=5.0,
                command_timeout=5.0,
            ),
            **delivery,
        ),
        dns=DnsConfig(nameservers=[world.dns.nameserver], timeout=2.0),
    )
    services = build_services(world.store, config, InProcessChangeBus())
    services.queue = world.queue
    services.outbound = OutboundService(
        world.store,
        services.delivery,
        world.queue,
        hostname="mail.example.test",
        config=config.delivery,
    )
    return QueueRunner(services, config, poll_interval=60.0)


async def test_delivers_reusing_one_connection_and_records_first(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Three messages to one MX go over one connection (one per destination allowed);
    each recipient's outcome is recorded before the entry is done; one INFO line per
    recipient names the queue id, the recipient, the relay host[ip] and the status."""
    peer = await Peer(host="127.0.0.2", port=world.port).start()
    ids = [await world.queue.add(f"user{i}@remote.test") for i in (1, 2, 3)]
    runner = make_runner(world, max_connections_per_domain=1)
    caplog.set_level(logging.INFO, logger="pillarbox.queue")
    await runner.start()
    await world.queue.wait_for(lambda: world.queue.finished == set(ids))
    await runner.stop()
    await peer.stop()
    assert peer.connections == 1
    assert len(peer.received) == 3
    for queue_id in ids:
        calls = [c for c, id in world.queue.calls if id == queue_id]
        assert calls == ["claim", "record", "done"]
    states = {o.state for _, outs in world.queue.recorded for o in outs}
    assert states == {RecipientState.DELIVERED}
    lines = [r.getMessage() for r in caplog.records if "to=<user1@remote.test>" in r.getMessage()]
    assert lines == [
        f"queue {ids[0]}: to=<user1@remote.test>, relay=mx1.remote.test[127.0.0.2]:"
        f"{world.port}, status=sent 2.0.0 (250 2.0.0 Ok: queued)"
    ]


async def test_deferred_at_first_mx_delivered_at_second(world: World) -> None:
    """451 at the preferred MX: the recipient is tried at the next MX in the same
    attempt and delivered there."""
    mx1 = await Peer(host="127.0.0.2", port=world.port).start()
    mx1.rcpt_replies = {"bob@remote.test": "451 4.2.1 Mailbox busy"}
    mx2 = await Peer(host="127.0.0.3", port=world.port).start()
    queue_id = await world.queue.add("bob@remote.test")
    runner = make_runner(world)
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    await mx1.stop()
    await mx2.stop()
    assert mx1.received == [] and len(mx2.received) == 1
    [(_, [outcome])] = world.queue.recorded
    assert outcome.state is RecipientState.DELIVERED
    assert outcome.remote_mta == "mx2.remote.test"


async def test_all_mx_defer_reschedules_with_last_reply(world: World) -> None:
    """451 everywhere (the second MX not even listening: connection refused): the
    recipient stays queued with the last reply, the entry is rescheduled."""
    mx1 = await Peer(host="127.0.0.2", port=world.port).start()
    mx1.rcpt_replies = {"bob@remote.test": "451 4.2.1 Mailbox busy"}
    queue_id = await world.queue.add("bob@remote.test")
    runner = make_runner(world)
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    await mx1.stop()
    after = await world.queue.get(queue_id)
    assert after is not None
    assert after.next_attempt > datetime.now(UTC)
    assert "127.0.0.3" in after.last_error  # the connection refused at mx2 came last
    [r] = after.recipients
    assert r.state is RecipientState.QUEUED and r.status.startswith("4.")


async def test_550_fails_and_bounces_to_local_sender(world: World) -> None:
    """550 fails the recipient with the reply as diagnostic; the DSN lands in the local
    sender's INBOX, and the entry is done."""
    peer = await Peer(host="127.0.0.2", port=world.port).start()
    peer.rcpt_replies = {"gone@single.test": "550 5.1.1 No such user"}
    queue_id = await world.queue.add("gone@single.test")
    runner = make_runner(world)
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    await peer.stop()
    [(_, [outcome])] = world.queue.recorded
    assert (outcome.state, outcome.diagnostic) == (
        RecipientState.FAILED,
        "550 5.1.1 No such user",
    )
    assert world.queue.calls[-1] == ("done", queue_id)
    account = await world.store.get_account("alice@example.test")
    assert account is not None
    box = await world.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    [uid] = await world.store.uids(box.id)
    dsn = await world.store.read_message(box.id, uid)
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user" in dsn


async def test_private_network_refused(world: World) -> None:
    """allow_private_networks off: an MX resolving to 127.0.0.2 is never connected to;
    the recipient is deferred with 4.4.4."""
    peer = await Peer(host="127.0.0.2", port=world.port).start()
    queue_id = await world.queue.add("bob@single.test")
    runner = make_runner(world, allow_private_networks=False)
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    await peer.stop()
    assert peer.connections == 0
    after = await world.queue.get(queue_id)
    assert after is not None
    [r] = after.recipients
    assert (r.state, r.status) == (RecipientState.QUEUED, "4.4.4")


async def test_relay_with_starttls_and_relayed_dsn(world: World, tmp_path: Path) -> None:
    """With a relay: no MX lookup, STARTTLS required (self-signed, verification off),
    every domain through it; a relay without DSN makes a NOTIFY=SUCCESS recipient
    RELAYED, and the sender gets a "relayed" DSN."""
    cert, key = ensure_self_signed(tmp_path / "tls", "relay.test")
    relay = await Peer(extensions=("8BITMIME",), tls=server_context(cert, key)).start()
    queue_id = await world.queue.add("x@one.test", "y@two.test", notify=["SUCCESS"])
    runner = make_runner(
        world,
        relay=f"127.0.0.1:{relay.port}",
        relay_security="starttls",
        relay_tls_verify=False,
        allow_private_networks=False,
    )
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    await relay.stop()
    [got] = relay.received
    assert got.tls and len(got.rcpts) == 2
    states = {o.position: o.state for _, outs in world.queue.recorded for o in outs}
    assert states == {0: RecipientState.RELAYED, 1: RecipientState.DELIVERED}
    account = await world.store.get_account("alice@example.test")
    assert account is not None
    box = await world.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    [uid] = await world.store.uids(box.id)
    assert b"Action: relayed" in await world.store.read_message(box.id, uid)


async def test_wake_claims_at_once(world: World) -> None:
    """An entry queued after start is sent on `wake()`, not at the next poll (60 s)."""
    peer = await Peer(host="127.0.0.2", port=world.port).start()
    runner = make_runner(world)
    await runner.start()
    await world.queue.wait_for(lambda: True)
    queue_id = await world.queue.add("bob@single.test")
    runner.wake()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished, timeout=10.0)
    await runner.stop()
    await peer.stop()
    assert len(peer.received) == 1


async def test_stop_leaves_unanswered_sends_to_their_claim(world: World) -> None:
    """A peer that never answers the final dot: `stop` waits its grace, cancels the
    send, records nothing and settles nothing (the claim expires; the entry is tried
    again later), and returns without waiting for the peer."""
    hold = asyncio.Event()
    peer = await Peer(host="127.0.0.2", port=world.port, hold=hold).start()
    queue_id = await world.queue.add("bob@single.test")
    runner = make_runner(world)
    await runner.start()
    async with asyncio.timeout(10):
        await peer.data_seen.wait()
    async with asyncio.timeout(10):
        await runner.stop(grace=0.1)
    assert [c for c, _ in world.queue.calls] == ["claim"]
    assert runner.in_flight == 0
    left = await world.queue.get(queue_id)
    assert left is not None and left.attempts == 0 and len(left.pending) == 1
    hold.set()
    await peer.stop()


async def test_unexpected_failure_reschedules(world: World) -> None:
    """A failure outside SMTP (here: the message cannot be read) reschedules the entry
    with the usual back-off instead of leaving it until its claim expires."""

    async def broken(entry: QueuedMessage) -> bytes:
        raise OSError("disk gone")

    world.queue.read_message = broken  # type: ignore[method-assign]
    queue_id = await world.queue.add("bob@single.test")
    runner = make_runner(world)
    await runner.start()
    await world.queue.wait_for(lambda: queue_id in world.queue.finished)
    await runner.stop()
    after = await world.queue.get(queue_id)
    assert after is not None and after.last_error.startswith("internal error")


async def test_outcome_recorded_before_a_crash_is_settled_after_it(world: World) -> None:
    """A worker recorded a 550 and died before settling (no DSN, no `done`; its claim has
    run out): the next runner sends the DSN to the local sender and removes the entry."""
    queue_id = await world.queue.add("gone@single.test")
    [entry] = await world.queue.claim(1, 0.0)  # a lease already over: the worker is gone
    failed = RecipientOutcome(
        0, RecipientState.FAILED, "5.1.1", "550 5.1.1 No such user", "mx1.remote.test"
    )
    await world.queue.record(entry.id, [failed])
    runner = make_runner(world)
    await runner.start()
    try:
        await world.queue.wait_for(lambda: queue_id in world.queue.finished, timeout=3)
    finally:
        await runner.stop()
    assert await world.queue.get(queue_id) is None
    account = await world.store.get_account("alice@example.test")
    assert account is not None
    box = await world.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    [uid] = await world.store.uids(box.id)
    dsn = await world.store.read_message(box.id, uid)
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user" in dsn
