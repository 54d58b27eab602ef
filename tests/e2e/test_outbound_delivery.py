"""Issue 12 end to end: A's queue runner sends to B's server, a second Pillarbox on
127.0.0.1, found through an MX record served by a DNS server on loopback. B offers
STARTTLS (self-signed), SMTPUTF8, 8BITMIME and DSN, so the message goes over TLS with
all of them, and lands in bob's INBOX on B."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from pillarbox.app import build_services
from pillarbox.config import Config, DeliveryConfig, DnsConfig, ServerConfig
from pillarbox.model import RecipientState
from pillarbox.queue.runner import QueueRunner
from pillarbox.services.outbound import OutboundService
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.sqlite import SqliteStore
from tests.dnsserver import DnsServer
from tests.e2e.conftest import RunningServer
from tests.watched_queue import WatchedQueue

MESSAGE = (
    "From: Zoë <zed@a.test>\r\n"
    "To: bob@example.test\r\n"
    "Subject: Grüße aus A\r\n"
    "Message-ID: <a1@a.test>\r\n"
    "\r\n"
    "Schöne Grüße.\r\n"
    ".a line starting with a dot\r\n"
).encode()


async def test_a_sends_to_b(
    server_factory: Callable[..., RunningServer], tmp_path: Path, dns_server: DnsServer
) -> None:
    """A message queued at A (8-bit, UTF-8 header, NOTIFY=SUCCESS) is delivered to B's
    MX over STARTTLS with SMTPUTF8; B offers DSN, so the recipient is DELIVERED (the
    report, if any, is B's to send) and A sends no DSN; bob finds it on B byte for byte
    after B's trace fields."""
    b = server_factory()
    dns_server.add("example.test", "MX", "10 mx.b.test.")
    dns_server.add("mx.b.test", "A", "127.0.0.1")
    store = SqliteStore(tmp_path / "a")
    await store.open()
    await store.add_domain("a.test")
    await store.add_account("zed@a.test", "not-a-real-hash")
    queue = WatchedQueue(store)
    config = Config(
        server=ServerConfig(hostname="mail.a.test"),
        delivery=DeliveryConfig(port=b.port("smtp"), allow_private_networks=True),
        dns=DnsConfig(nameservers=[dns_server.nameserver], timeout=2.0),
    )
    services = build_services(store, config, InProcessChangeBus())
    services.queue = queue
    services.outbound = OutboundService(
        store, services.delivery, queue, hostname="mail.a.test", config=config.delivery
    )
    runner = QueueRunner(services, config)
    queue_id = await queue.add(
        "bob@example.test", sender="zed@a.test", data=MESSAGE, notify=["SUCCESS"]
    )
    await runner.start()
    try:
        await queue.wait_for(lambda: queue_id in queue.finished, timeout=30)
    finally:
        await runner.stop()
    [(_, [outcome])] = queue.recorded
    assert outcome.state is RecipientState.DELIVERED, outcome
    assert outcome.remote_mta == "mx.b.test"
    assert queue.calls[-1] == ("done", queue_id)

    async def bobs_inbox() -> list[bytes]:
        account = await b.store.get_account("bob@example.test")
        box = await b.store.get_mailbox(account.id, "INBOX")
        return [await b.store.read_message(box.id, uid) for uid in await b.store.uids(box.id)]

    [received] = await asyncio.to_thread(b.call, bobs_inbox)
    assert received.endswith(MESSAGE)
    assert b"from mail.a.test" in received and b"with UTF8SMTPS" in received
    # No DSN at A: the next hop took responsibility for NOTIFY=SUCCESS.
    zed = await store.get_account("zed@a.test")
    assert zed is not None
    inbox = await store.get_mailbox(zed.id, "INBOX")
    assert inbox is not None and await store.uids(inbox.id) == []
    await store.close()
