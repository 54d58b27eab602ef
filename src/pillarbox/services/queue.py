"""The outbound queue as the queue runner and the operator see it.

Owns the service face of the store's queue: what the runner (`queue/`, a front-end that
never touches the store) claims, records, reschedules and finishes, and what the
operator lists, inspects, retries and deletes (`pillarbox queue ...`). Store errors are
turned into service words here: an entry removed meanwhile (delivered and finished by
another worker, or deleted by the operator while it was being sent) is `QueueEntryGone`,
a store that cannot answer `TempFailure`.

Must not: decide when to retry, how to route or when to bounce (that is the runner's
policy), or hold a claim itself. Times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from pillarbox.model import QueuedMessage, RecipientOutcome
from pillarbox.services.errors import QueueEntryGone, TempFailure
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

T = TypeVar("T")

Entries = list[QueuedMessage]  # named here: `QueueService.list` hides the builtin in the class

HEADER_LIMIT = 256 * 1024  # `read_headers` reads at most this much of a message


async def _gone_if_missing(queue_id: int, call: Awaitable[T]) -> T:
    try:
        return await call
    except store_errors.NotFound:
        raise QueueEntryGone(queue_id) from None
    except store_errors.StoreUnavailable as exc:
        raise TempFailure("Temporary storage failure, try again later") from exc


class QueueService:
    """The outbound queue: claim and settle entries (runner), inspect them (operator)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- the operator ------------------------------------------------------------------
    async def list(self) -> Entries:
        """Every entry, oldest first, with every recipient and its state."""
        return await self._store.list_queue()

    async def get(self, queue_id: int) -> QueuedMessage | None:
        return await self._store.get_queued(queue_id)

    async def retry(self, queue_id: int | None = None) -> int:
        """Make one entry (None: every entry) due now; how many entries that touched.
        An entry being sent right now stays with its worker."""
        return await self._store.retry_queued(queue_id)

    async def delete(self, queue_id: int) -> bool:
        """Drop an entry without sending it further (no bounce); False if there was none.
        A worker sending it right now finds it gone when it records an outcome."""
        return await self._store.remove_queued(queue_id)

    async def read_headers(self, entry: QueuedMessage) -> bytes:
        """The message's header block, up to `HEADER_LIMIT` octets (for `queue show`)."""
        head = await _gone_if_missing(
            entry.id, self._store.read_blob(entry.blob_id, 0, HEADER_LIMIT)
        )
        if head.startswith(b"\r\n"):
            return b""
        end = head.find(b"\r\n\r\n")
        return head if end < 0 else head[: end + 2]

    # --- the runner --------------------------------------------------------------------
    async def release_claims(self) -> int:
        """What an earlier run of this server held when it died or stopped mid-send is
        due again now (its peers' 250s were recorded, so nothing is sent twice)."""
        return await self._store.release_claims()

    async def claim(self, limit: int, lease: float) -> Entries:
        """Up to `limit` due entries with a recipient left to try, now held for `lease`
        seconds by the caller (no other claim returns them meanwhile)."""
        return await self._store.claim_queue(datetime.now(UTC), limit, lease)

    async def record(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        """Record recipients' outcomes durably (on disk when this returns): call it as soon
        as the next hop has answered, so a restart never sends them the message again.
        QueueEntryGone if the entry was removed meanwhile."""
        await _gone_if_missing(queue_id, self._store.record_outcomes(queue_id, outcomes))

    async def reschedule(
        self,
        queue_id: int,
        next_attempt: datetime,
        last_error: str,
        warned: bool | None = None,
    ) -> None:
        """Count the attempt, set the next one and release the claim; `warned` once a
        delay DSN went out. QueueEntryGone if the entry was removed meanwhile."""
        await _gone_if_missing(
            queue_id,
            self._store.reschedule(queue_id, next_attempt, last_error, warned=warned),
        )

    async def done(self, queue_id: int) -> bool:
        """Remove a finished entry (no recipient left to try) and, with it, its message
        unless a mailbox holds it too; False if it was already gone."""
        return await self._store.remove_queued(queue_id)

    async def read_message(self, entry: QueuedMessage) -> bytes:
        """The whole message as queued. QueueEntryGone if it was removed meanwhile."""
        return await _gone_if_missing(entry.id, self._store.read_blob(entry.blob_id))
