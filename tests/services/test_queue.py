"""QueueService on a real SQLite store: the names the queue runner and the CLI use, and
store errors turned into service words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pillarbox.model import QueuedRecipient, QueueOrigin, RecipientOutcome, RecipientState
from pillarbox.services.errors import QueueEntryGone
from pillarbox.services.queue import QueueService
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore

MESSAGE = b"From: a@example.test\r\nSubject: out\r\n\r\nbody\r\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    yield s
    await s.close()


async def enqueue(store: Store, *recipients: str, data: bytes = MESSAGE) -> int:
    writer = store.new_blob()
    await writer.write(data)
    blob = await writer.finish()
    rcpts = [QueuedRecipient(r) for r in recipients]
    return await store.enqueue("a@example.test", rcpts, blob, origin=QueueOrigin.SUBMISSION)


async def test_runner_cycle(store: Store) -> None:
    """claim → read_message → record → reschedule → claim again → record → done: the
    entry is held while claimed, outcomes stick, and done removes entry and message."""
    queue = QueueService(store)
    qid = await enqueue(store, "x@far.test", "y@far.test")
    [entry] = await queue.claim(10, 300)
    assert entry.id == qid and entry.origin is QueueOrigin.SUBMISSION
    assert await queue.claim(10, 300) == []
    assert await queue.read_message(entry) == MESSAGE
    await queue.record(
        qid, [RecipientOutcome(0, RecipientState.DELIVERED, "2.0.0", "250 ok", "mx.far.test")]
    )
    await queue.reschedule(qid, datetime.now(UTC) - timedelta(seconds=1), "451 4.7.1 later")
    [again] = await queue.claim(10, 300)
    assert [r.address for r in again.pending] == ["y@far.test"]
    assert (again.attempts, again.last_error) == (1, "451 4.7.1 later")
    await queue.record(qid, [RecipientOutcome(1, RecipientState.FAILED, "5.1.1", "550 no")])
    assert await queue.done(qid) is True
    assert await queue.get(qid) is None and await queue.list() == []
    assert await queue.done(qid) is False


async def test_entry_deleted_while_sending(store: Store) -> None:
    """An entry the operator deletes while a worker holds it: the worker's record,
    reschedule and read_message raise QueueEntryGone, not a store error."""
    queue = QueueService(store)
    qid = await enqueue(store, "x@far.test")
    [entry] = await queue.claim(1, 300)
    assert await queue.delete(qid) is True
    assert await queue.delete(qid) is False
    with pytest.raises(QueueEntryGone):
        await queue.record(qid, [RecipientOutcome(0, RecipientState.DELIVERED, "2.0.0", "ok")])
    with pytest.raises(QueueEntryGone):
        await queue.reschedule(qid, datetime.now(UTC), "x")
    with pytest.raises(QueueEntryGone):
        await queue.read_message(entry)


async def test_retry_and_headers(store: Store) -> None:
    """retry makes entries due now and counts them; read_headers returns the header
    block only."""
    queue = QueueService(store)
    first = await enqueue(store, "x@far.test")
    await enqueue(store, "y@far.test", data=b"Subject: s\r\n\r\n" + b"z" * 100_000)
    for entry in await queue.list():
        await store.reschedule(entry.id, datetime.now(UTC) + timedelta(days=1), "451")
    assert await queue.claim(10, 300) == []
    assert await queue.retry(first) == 1
    assert [e.id for e in await queue.claim(10, 300)] == [first]
    assert await queue.retry() == 2
    assert await queue.retry(first + 100) == 0
    entries = await queue.list()
    assert await queue.read_headers(entries[0]) == MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n"
    assert await queue.read_headers(entries[1]) == b"Subject: s\r\n"
