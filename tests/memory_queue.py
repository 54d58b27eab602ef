"""A stand-in for `services.queue.QueueService` (engineer S's branch) until the SQLite
queue lands: entries in a dict, claims honoured, every call logged in order, and a
condition to wait on. Remove once the real service is merged; the tests using it
should then run on a real store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pillarbox.model import QueuedMessage, RecipientOutcome
from pillarbox.services.outbound import apply_outcomes

MESSAGE = b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\nbody\r\n"


class MemoryQueue:
    def __init__(self, entries: Sequence[QueuedMessage] = (), data: bytes = MESSAGE) -> None:
        self.entries = {e.id: e for e in entries}
        self.data = data
        self.calls: list[tuple[str, int]] = []
        self.recorded: list[tuple[int, list[RecipientOutcome]]] = []
        self.rescheduled: dict[int, tuple[datetime, str, bool | None]] = {}
        self.held: set[int] = set()
        self.finished: set[int] = set()
        self._changed = asyncio.Condition()

    def add(self, entry: QueuedMessage) -> None:
        self.entries[entry.id] = entry

    async def _log(self, call: str, id: int) -> None:
        async with self._changed:
            self.calls.append((call, id))
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def claim(self, limit: int, lease: float) -> list[QueuedMessage]:
        now = datetime.now(UTC)
        due = [e for e in self.entries.values() if e.id not in self.held and e.next_attempt <= now][
            :limit
        ]
        for e in due:
            self.held.add(e.id)
            await self._log("claim", e.id)
        return due

    async def record(self, id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        self.entries[id] = apply_outcomes(self.entries[id], outcomes)
        self.recorded.append((id, list(outcomes)))
        await self._log("record", id)

    async def reschedule(
        self, id: int, next_attempt: datetime, last_error: str, warned: bool | None = None
    ) -> None:
        e = self.entries[id]
        self.entries[id] = QueuedMessage(
            **{
                **{f: getattr(e, f) for f in e.__dataclass_fields__},
                "next_attempt": next_attempt,
                "attempts": e.attempts + 1,
                "last_error": last_error,
                "warned": e.warned if warned is None else warned,
            }
        )
        self.rescheduled[id] = (next_attempt, last_error, warned)
        self.held.discard(id)
        self.finished.add(id)
        await self._log("reschedule", id)

    async def done(self, id: int) -> None:
        del self.entries[id]
        self.held.discard(id)
        self.finished.add(id)
        await self._log("done", id)

    async def read_message(self, entry: QueuedMessage) -> bytes:
        return self.data
