"""`IncomingMessage.finish_each`, LMTP's delivery (RFC 2033 §4.2): one outcome per
recipient; one store transaction normally, and a per-recipient retry from the kept spool
only when that fails with a mailbox status, leaving no stray file either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.services.delivery import DeliveryResult, DeliveryService, with_protocol
from pillarbox.services.errors import OverQuota
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore
from tests.services.test_delivery import (
    MULTIPART,
    _blob_files,
    check_rows_match_files,
    envelope,
    stored,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    for user in ("alice@example.test", "bob@example.test"):
        await s.add_account(user, "not-a-real-hash")
    yield s
    await s.close()


@pytest.fixture
def delivery(store: Store) -> DeliveryService:
    return DeliveryService(store, hostname="mail.example.test")


async def deliver_each(
    delivery: DeliveryService, *addresses: str
) -> list[DeliveryResult | Exception]:
    rcpts = [await delivery.resolve(a, relay_allowed=False) for a in addresses]
    incoming = delivery.begin(envelope(*rcpts))
    for i in range(0, len(MULTIPART), 100):
        await incoming.write(MULTIPART[i : i + 100])
    return list(await incoming.finish_each())


async def message_count(store: Store) -> int:
    return sum([len(await stored(store, a)) for a in ("alice@example.test", "bob@example.test")])


async def test_all_delivered_one_result(
    store: Store, delivery: DeliveryService, tmp_path: Path
) -> None:
    """Everyone fits: the one delivery's result for each recipient, one file per copy."""
    outcomes = await deliver_each(delivery, "alice@example.test", "bob@example.test")
    assert len(outcomes) == 2 and outcomes[0] is outcomes[1]
    assert isinstance(outcomes[0], DeliveryResult) and len(outcomes[0].delivered) == 2
    assert len(_blob_files(tmp_path)) == await message_count(store) == 2


async def test_over_quota_recipient_fails_alone(
    store: Store, delivery: DeliveryService, tmp_path: Path
) -> None:
    """bob over quota: his outcome is OverQuota, in RCPT order; alice and alice+tag (the
    same mailbox) share one delivered copy; the rows match their files and no spool or
    copy is left behind."""
    await store.set_quota("bob@example.test", 10)
    outcomes = await deliver_each(
        delivery, "alice@example.test", "bob@example.test", "alice+tag@example.test"
    )
    assert isinstance(outcomes[0], DeliveryResult)
    assert isinstance(outcomes[1], OverQuota)
    assert outcomes[2] is outcomes[0]
    [copy] = await stored(store, "alice@example.test")
    assert copy.startswith(b"Return-Path: <s@remote.test>\r\nDelivered-To: alice@example.test")
    assert copy.count(b"Received: ") == 1 and copy.endswith(MULTIPART)
    await check_rows_match_files(store, "alice@example.test")
    assert await stored(store, "bob@example.test") == []
    assert len(_blob_files(tmp_path)) == 1


async def test_one_mailbox_over_quota_is_every_recipients(
    store: Store, delivery: DeliveryService, tmp_path: Path
) -> None:
    """Two recipients that are one mailbox: nothing to retry, both get the error."""
    await store.set_quota("bob@example.test", 10)
    outcomes = await deliver_each(delivery, "bob@example.test", "bob+x@example.test")
    assert [type(o) for o in outcomes] == [OverQuota, OverQuota]
    assert _blob_files(tmp_path) == []


def test_with_protocol_lmtp() -> None:
    """RFC 3848 / RFC 6531 §3.7.3 "with" values for LMTP."""
    assert with_protocol(extended=True, tls=False, authenticated=False, utf8=False, lmtp=True) == (
        "LMTP"
    )
    assert with_protocol(extended=True, tls=True, authenticated=False, utf8=True, lmtp=True) == (
        "UTF8LMTPS"
    )
