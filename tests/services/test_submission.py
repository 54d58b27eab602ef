"""SubmissionService: who may send as whom, and the header fixes RFC 6409 §8 allows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.model import Account, QueueOrigin
from pillarbox.services.delivery import DeliveryService, Envelope
from pillarbox.services.errors import Rejected
from pillarbox.services.submission import SenderNotOwned, SubmissionService
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    for user in ("alice@example.test", "bob@example.test"):
        await s.add_account(user, "not-a-real-hash")
    await s.add_alias("sales@example.test", ["alice@example.test"])
    await s.add_alias("info@example.test", ["sales@example.test"])
    await s.add_alias("shared@example.test", ["alice@example.test", "bob@example.test"])
    await s.add_alias("@example.test", ["alice@example.test"])
    yield s
    await s.close()


@pytest.fixture
def submission(store: Store) -> SubmissionService:
    return SubmissionService(
        store, DeliveryService(store, hostname="mail.example.test"), hostname="mail.example.test"
    )


async def alice(store: Store) -> Account:
    account = await store.get_account("alice@example.test")
    assert account is not None
    return account


async def test_allowed_senders(store: Store, submission: SubmissionService) -> None:
    """Own address, aliases (also chained and shared) — but not the catch-all."""
    allowed = await submission.allowed_senders(await alice(store))
    assert allowed == {
        "alice@example.test",
        "sales@example.test",
        "info@example.test",
        "shared@example.test",
    }


@pytest.mark.parametrize(
    ("sender", "ok"),
    [
        ("alice@example.test", True),
        ("ALICE@Example.Test", True),
        ('"alice"@example.test.', True),  # the same address, by rules.addresses
        ("alice@[127.0.0.1]", False),
        ("not an address", False),
        ("alice+tag@example.test", True),
        ("sales+x@example.test", True),
        ("info@example.test", True),
        ("bob@example.test", False),
        ("random@example.test", False),  # catch-all gives no sending rights
        ("alice@other.test", False),
        ("", False),
        ("alicex@example.test", False),
    ],
)
async def test_check_sender(
    store: Store, submission: SubmissionService, sender: str, ok: bool
) -> None:
    account = await alice(store)
    if ok:
        await submission.check_sender(account, sender)
    else:
        with pytest.raises(SenderNotOwned) as info:
            await submission.check_sender(account, sender)
        assert info.value.status == "5.7.1"


async def test_from_header_rules(store: Store, submission: SubmissionService) -> None:
    allowed = await submission.allowed_senders(await alice(store))
    fix = submission.fix_header
    added = fix(b"From: Alice <alice@example.test>\r\nSubject: x\r\n\r\n", allowed)
    assert added.startswith(b"Message-ID: <") and b"@mail.example.test>\r\nDate: " in added
    full = (
        b"From: =?utf-8?q?S=C3=A4les?= <sales@example.test>\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\n"
    )
    assert fix(full, allowed) == b""
    for bad in (
        b"From: bob@example.test\r\n\r\n",
        b"From: alice@example.test, bob@example.test\r\n\r\n",
        b"From: undisclosed\r\n\r\n",
        b"Subject: no from\r\n\r\n",
    ):
        with pytest.raises(Rejected):
            fix(bad, allowed)


async def test_submitted_mail_is_queued_as_submission(
    store: Store, submission: SubmissionService
) -> None:
    """A message an authenticated user submits is queued with origin SUBMISSION (the
    queue signs it with DKIM), and its local copy is stored with it in one call."""
    account = await alice(store)
    allowed = await submission.allowed_senders(account)
    delivery = DeliveryService(store, hostname="mail.example.test")
    rcpts = (
        await delivery.resolve("far@remote.test", relay_allowed=True),
        await delivery.resolve("bob@example.test", relay_allowed=True),
    )
    envelope = Envelope(
        sender="alice@example.test",
        recipients=rcpts,
        helo="client.test",
        client_ip="127.0.0.1",
        protocol="ESMTPSA",
    )
    incoming = submission.begin(account, allowed, envelope)
    await incoming.write(b"From: alice@example.test\r\nSubject: out\r\n\r\nhello\r\n")
    result = await incoming.finish()
    [queued] = await store.list_queue()
    assert result.queue_id == queued.id and queued.origin is QueueOrigin.SUBMISSION
    assert [r.address for r in queued.recipients] == ["far@remote.test"]
    assert len(result.delivered) == 1
