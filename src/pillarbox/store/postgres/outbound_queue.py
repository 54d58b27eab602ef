"""PostgreSQL: the outbound queue concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pillarbox.model import (
    AppendResult,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    RecipientOutcome,
)
from pillarbox.store.api import BlobHandle, Delivery
from pillarbox.store.postgres.core import PgCore


class OutboundQueueMixin(PgCore):
    """The outbound queue methods of the store contract on PostgreSQL."""

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> int:
        raise NotImplementedError

    async def deliver_and_enqueue(
        self,
        deliveries: Sequence[Delivery],
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> tuple[list[AppendResult], int]:
        raise NotImplementedError

    async def list_queue(self) -> list[QueuedMessage]:
        raise NotImplementedError

    async def get_queued(self, queue_id: int) -> QueuedMessage | None:
        raise NotImplementedError

    async def claim_queue(self, now: datetime, limit: int, lease: float) -> list[QueuedMessage]:
        raise NotImplementedError

    async def record_outcomes(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        raise NotImplementedError

    async def reschedule(
        self,
        queue_id: int,
        next_attempt: datetime,
        last_error: str,
        *,
        warned: bool | None = None,
    ) -> None:
        raise NotImplementedError

    async def retry_queued(self, queue_id: int | None = None) -> int:
        raise NotImplementedError

    async def release_claims(self) -> int:
        raise NotImplementedError

    async def remove_queued(self, queue_id: int) -> bool:
        raise NotImplementedError
