"""services.outbound: the decisions after an attempt (which DSN, back-off, expiry, the
one delay warning), where DSNs go (a local sender's INBOX, else the queue with the null
sender and origin BOUNCE), and DKIM signing in `prepare`. On a real SQLite store; the
queue is the real `QueueService`, watched (`tests.watched_queue`)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pillarbox.config import DeliveryConfig
from pillarbox.model import (
    DkimKey,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    RecipientOutcome,
    RecipientState,
)
from pillarbox.services.delivery import DeliveryService
from pillarbox.services.outbound import OutboundService, wants
from pillarbox.store.sqlite import SqliteStore
from tests.watched_queue import WatchedQueue

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
MESSAGE = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\nbody\r\n"
CONFIG = DeliveryConfig(retry_initial=300, retry_max=3600, queue_lifetime=86400, delay_warning=7200)


def entry(*recipients: QueuedRecipient, **kw: object) -> QueuedMessage:
    rcpts = tuple(dataclasses.replace(r, position=i) for i, r in enumerate(recipients))
    values: dict[str, object] = {
        "id": 7,
        "sender": "alice@example.test",
        "recipients": rcpts,
        "blob_id": 1,
        "created_at": NOW - timedelta(minutes=10),
        "next_attempt": NOW,
    }
    values.update(kw)
    return QueuedMessage(**values)  # type: ignore[arg-type]


def outcome(position: int, state: RecipientState, status: str, text: str = "") -> RecipientOutcome:
    return RecipientOutcome(position, state, status, text or f"reply {status}", "mx.remote.test")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    await s.add_account("alice@example.test", "not-a-real-hash")
    yield s
    await s.close()


def service(store: SqliteStore, **kw: object) -> tuple[OutboundService, WatchedQueue]:
    delivery = DeliveryService(store, hostname="mail.example.test")
    config = dataclasses.replace(CONFIG, **kw)  # type: ignore[arg-type]
    queue = WatchedQueue(store)
    svc = OutboundService(store, delivery, queue, hostname="mail.example.test", config=config)
    return svc, queue


def test_notify_rules() -> None:
    """RFC 3461 §4.1: no NOTIFY → failure and delay; NEVER → nothing; a list → its items."""
    plain = QueuedRecipient("a@b")
    assert wants(plain, "FAILURE") and wants(plain, "DELAY") and not wants(plain, "SUCCESS")
    never = QueuedRecipient("a@b", notify="NEVER")
    assert not any(wants(never, k) for k in ("FAILURE", "DELAY", "SUCCESS"))
    success = QueuedRecipient("a@b", notify="success")
    assert wants(success, "SUCCESS") and not wants(success, "FAILURE")


async def test_plan_failed_relayed_delivered_and_done(store: SqliteStore) -> None:
    """A failure gets a failed DSN, a relayed NOTIFY=SUCCESS a relayed DSN, a plain
    delivery nothing; with nothing pending the entry is done."""
    e = entry(
        QueuedRecipient("x@remote.test"),
        QueuedRecipient("y@remote.test", notify="SUCCESS"),
        QueuedRecipient("z@remote.test"),
        QueuedRecipient("n@remote.test", notify="NEVER"),
    )
    svc, _ = service(store)
    plan = svc.plan(
        e,
        [
            outcome(0, RecipientState.FAILED, "5.1.1"),
            outcome(1, RecipientState.RELAYED, "2.0.0"),
            outcome(2, RecipientState.DELIVERED, "2.0.0"),
            outcome(3, RecipientState.FAILED, "5.1.1"),
        ],
        NOW,
    )
    assert [r.address for r in plan.failed] == ["x@remote.test"]
    assert [r.address for r in plan.relayed] == ["y@remote.test"]
    assert plan.delayed == () and plan.expired == ()
    assert plan.next_attempt is None


async def test_backoff_doubles_up_to_the_maximum(store: SqliteStore) -> None:
    """retry_initial doubling per attempt, capped at retry_max."""
    svc, _ = service(store)
    assert [svc.next_delay(n) for n in range(6)] == [300, 600, 1200, 2400, 3600, 3600]
    assert svc.next_delay(10_000) == 3600
    e = entry(QueuedRecipient("x@remote.test"), attempts=2)
    plan = svc.plan(e, [outcome(0, RecipientState.QUEUED, "4.3.0", "451 4.3.0 later")], NOW)
    assert plan.next_attempt == NOW + timedelta(seconds=1200)
    assert plan.last_error == "451 4.3.0 later"
    assert plan.failed == () and plan.delayed == () and plan.warned is None


async def test_next_attempt_never_after_expiry_and_expiry_fails(
    store: SqliteStore,
) -> None:
    """The last retry is at the expiry; at or after it, pending recipients fail with the
    status of the actual problem (RFC 3463 §3.5; 4.4.7 only when there is none) and
    their last reply in the diagnostic."""
    svc, _ = service(store)
    young = entry(QueuedRecipient("x@remote.test"), created_at=NOW - timedelta(seconds=86300))
    plan = svc.plan(young, [outcome(0, RecipientState.QUEUED, "4.3.0")], NOW)
    assert plan.next_attempt == young.created_at + timedelta(seconds=86400)
    old = entry(QueuedRecipient("x@remote.test"), created_at=NOW - timedelta(days=1))
    plan = svc.plan(old, [outcome(0, RecipientState.QUEUED, "4.3.0", "451 busy")], NOW)
    assert plan.next_attempt is None
    [expired] = plan.expired
    assert (expired.state, expired.status) == (RecipientState.FAILED, "4.3.0")
    assert "451 busy" in expired.diagnostic
    assert [r.status for r in plan.failed] == ["4.3.0"]
    never_tried = entry(QueuedRecipient("x@remote.test"), created_at=NOW - timedelta(days=1))
    [unknown] = svc.plan(never_tried, [], NOW).expired
    assert unknown.status == "4.4.7"


async def test_delay_warning_once(store: SqliteStore) -> None:
    """After delay_warning, one delayed DSN (for recipients that want DELAY) and
    `warned`; an entry already warned gets none; 0 disables it."""
    svc, _ = service(store)
    e = entry(
        QueuedRecipient("x@remote.test"),
        QueuedRecipient("q@remote.test", notify="FAILURE"),
        created_at=NOW - timedelta(hours=3),
    )
    deferred = [
        outcome(0, RecipientState.QUEUED, "4.3.0"),
        outcome(1, RecipientState.QUEUED, "4.3.0"),
    ]
    plan = svc.plan(e, deferred, NOW)
    assert [r.address for r in plan.delayed] == ["x@remote.test"] and plan.warned is True
    plan = svc.plan(dataclasses.replace(e, warned=True), deferred, NOW)
    assert plan.delayed == () and plan.warned is None
    assert service(store, delay_warning=0)[0].plan(e, deferred, NOW).delayed == ()


async def test_no_dsn_for_null_sender_or_bounce(store: SqliteStore) -> None:
    """RFC 3461 §6.1 / RFC 5321 §4.5.5: never a DSN about a DSN."""
    svc, _ = service(store)
    failed = [outcome(0, RecipientState.FAILED, "5.1.1")]
    for e in (
        entry(QueuedRecipient("x@remote.test"), sender=""),
        entry(QueuedRecipient("x@remote.test"), origin=QueueOrigin.BOUNCE),
    ):
        plan = svc.plan(e, failed, NOW)
        assert plan.failed == () and plan.next_attempt is None


async def test_settle_delivers_failure_dsn_to_local_sender_inbox(store: SqliteStore) -> None:
    """A failure for a local sender: the DSN is stored in the sender's INBOX (never sent
    over SMTP), then the entry is done; nothing is left in the queue."""
    svc, queue = service(store)
    queue_id = await queue.add("x@remote.test", envid="E+3D1")
    e = await queue.claim_one(queue_id)
    await svc.settle(e, [outcome(0, RecipientState.FAILED, "5.1.1", "550 5.1.1 unknown")], NOW)
    assert queue.calls[-1] == ("done", queue_id)
    assert await queue.list() == []
    account = await store.get_account("alice@example.test")
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    [uid] = await store.uids(box.id)
    data = await store.read_message(box.id, uid)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Return-Path"] == "<>"
    assert msg.get_content_type() == "multipart/report"
    per_message, block = msg.get_payload()[1].get_payload()  # type: ignore[index, misc]
    assert per_message["Original-Envelope-Id"] == "E=1"  # xtext decoded (RFC 3461 §6.3)
    assert block["Action"] == "failed" and block["Status"] == "5.1.1"
    assert block["Diagnostic-Code"] == "smtp; 550 5.1.1 unknown"


async def test_settle_queues_dsn_for_remote_sender_as_bounce(store: SqliteStore) -> None:
    """A remote sender's DSN is queued with the null sender and origin BOUNCE, and the
    runner is woken (`DeliveryService.on_enqueue`)."""
    svc, queue = service(store)
    woken: list[bool] = []
    svc._delivery.on_enqueue = lambda: woken.append(True)
    queue_id = await queue.add("x@remote.test", sender="someone@elsewhere.test")
    e = await queue.claim_one(queue_id)
    await svc.settle(e, [outcome(0, RecipientState.FAILED, "5.1.1")], NOW)
    [queued] = await queue.list()
    assert queued.id != queue_id
    assert queued.sender == "" and queued.origin is QueueOrigin.BOUNCE
    assert [r.address for r in queued.recipients] == ["someone@elsewhere.test"]
    assert b"Action: failed" in await queue.read_message(queued)
    assert woken == [True]


async def test_settle_records_expiry_before_reporting(store: SqliteStore) -> None:
    """Expired recipients are recorded failed (with their last status) before the DSN
    goes and the entry is done."""
    svc, queue = service(store)
    queue_id = await queue.add("x@remote.test")
    e = dataclasses.replace(await queue.claim_one(queue_id), created_at=NOW - timedelta(days=2))
    await svc.settle(e, [outcome(0, RecipientState.QUEUED, "4.4.1")], NOW)
    assert queue.calls[1:] == [("record", queue_id), ("done", queue_id)]
    [(_, [expired])] = queue.recorded
    assert (expired.state, expired.status) == (RecipientState.FAILED, "4.4.1")


async def test_settle_reschedules_with_warning(store: SqliteStore) -> None:
    """A deferral after delay_warning: rescheduled with the back-off, the last reply and
    `warned`, and the sender has the delayed DSN."""
    svc, queue = service(store)
    queue_id = await queue.add("x@remote.test")
    e = dataclasses.replace(await queue.claim_one(queue_id), created_at=NOW - timedelta(hours=3))
    await svc.settle(e, [outcome(0, RecipientState.QUEUED, "4.3.0", "451 x")], NOW)
    after = await queue.get(queue_id)
    assert after is not None
    assert (after.next_attempt, after.last_error, after.warned, after.attempts) == (
        NOW + timedelta(seconds=300),
        "451 x",
        True,
        1,
    )
    account = await store.get_account("alice@example.test")
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    [uid] = await store.uids(box.id)
    assert b"Action: delayed" in await store.read_message(box.id, uid)


async def test_prepare_signs_submissions_only(store: SqliteStore) -> None:
    """A submission from a domain with a key gets the signer's header prepended; a
    forwarded message, a domain without a key, or dkim_sign off: unchanged."""
    await store.put_dkim_key(DkimKey("example.test", "s1", "ed25519-sha256", b"k", "p", NOW))
    signed: list[str] = []

    def signer(data: bytes, key: DkimKey) -> bytes:
        signed.append(key.selector)
        return b"DKIM-Signature: v=1; d=example.test; s=s1\r\n"

    queue = WatchedQueue(store)
    delivery = DeliveryService(store, hostname="mail.example.test")

    def make(**kw: object) -> OutboundService:
        config = dataclasses.replace(CONFIG, **kw)  # type: ignore[arg-type]
        return OutboundService(
            store, delivery, queue, hostname="mail.example.test", config=config, signer=signer
        )

    sub = await queue.get(await queue.add("x@remote.test"))
    fwd = await queue.get(await queue.add("x@remote.test", origin=QueueOrigin.FORWARD))
    other = MESSAGE.replace(b"alice@example.test", b"alice@unsigned.test")
    unsigned = await queue.get(await queue.add("x@remote.test", data=other))
    assert sub is not None and fwd is not None and unsigned is not None
    data = await make().prepare(sub)
    assert data.startswith(b"DKIM-Signature: v=1; d=example.test; s=s1\r\nFrom: alice")
    assert await make().prepare(fwd) == MESSAGE
    assert await make(dkim_sign=False).prepare(sub) == MESSAGE
    assert await make().prepare(unsigned) == other
    assert signed == ["s1"]


async def test_prepare_signs_with_mailauth_dkim(store: SqliteStore) -> None:
    """With the real signer (`mailauth.dkim.sign`), a submission carries a signature
    that dkimpy verifies against the key's published record."""
    import dkim as dkimpy

    from pillarbox.mailauth.dkim import generate_key, key_record

    key = generate_key("example.test", "s2026")
    await store.put_dkim_key(key)
    svc, queue = service(store)
    entry_ = await queue.get(await queue.add("x@remote.test"))
    assert entry_ is not None
    data = await svc.prepare(entry_)
    assert data.startswith(b"DKIM-Signature:") and data.endswith(MESSAGE)
    record = key_record(key).encode()
    assert dkimpy.verify(data, dnsfunc=lambda name, timeout=5: record)
