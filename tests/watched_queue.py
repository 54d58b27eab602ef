"""The real `QueueService`, watched: every runner-side call is logged in order and
announced on a condition, so tests wait for "entry 3 is done" instead of sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pillarbox.model import QueuedMessage, QueuedRecipient, QueueOrigin, RecipientOutcome
from pillarbox.services.queue import QueueService
from pillarbox.store.api import Store

MESSAGE = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\nbody\r\n"


class WatchedQueue(QueueService):
    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.store = store
        self.calls: list[tuple[str, int]] = []
        self.recorded: list[tuple[int, list[RecipientOutcome]]] = []
        self.finished: set[int] = set()  # rescheduled or done
        self._changed = asyncio.Condition()

    async def _log(self, call: str, queue_id: int) -> None:
        async with self._changed:
            self.calls.append((call, queue_id))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def add(
        self,
        *addresses: str,
        sender: str = "alice@example.test",
        data: bytes = MESSAGE,
        notify: Sequence[str | None] = (),
        origin: QueueOrigin = QueueOrigin.SUBMISSION,
        envid: str | None = None,
        ret: str | None = None,
    ) -> int:
        """Queue `data` for `addresses` through the store, as delivery does."""
        writer = self.store.new_blob()
        await writer.write(data)
        blob = await writer.finish()
        notes = list(notify) + [None] * (len(addresses) - len(notify))
        recipients = [QueuedRecipient(a, notify=n) for a, n in zip(addresses, notes, strict=True)]
        return await self.store.enqueue(
            sender, recipients, blob, dsn_envid=envid, dsn_ret=ret, origin=origin
        )

    async def claim_one(self, queue_id: int) -> QueuedMessage:
        """Claim and return entry `queue_id` (it must be due)."""
        [entry] = [e for e in await self.claim(100, 60.0) if e.id == queue_id]
        return entry

    async def claim(self, limit: int, lease: float) -> list[QueuedMessage]:
        claimed = await super().claim(limit, lease)
        for e in claimed:
            await self._log("claim", e.id)
        return claimed

    async def record(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        await super().record(queue_id, outcomes)
        self.recorded.append((queue_id, list(outcomes)))
        await self._log("record", queue_id)

    async def reschedule(
        self, queue_id: int, next_attempt: datetime, last_error: str, warned: bool | None = None
    ) -> None:
        await super().reschedule(queue_id, next_attempt, last_error, warned)
        self.finished.add(queue_id)
        await self._log("reschedule", queue_id)

    async def done(self, queue_id: int) -> bool:
        found = await super().done(queue_id)
        self.finished.add(queue_id)
        await self._log("done", queue_id)
        return found


def now() -> datetime:
    return datetime.now(UTC)
