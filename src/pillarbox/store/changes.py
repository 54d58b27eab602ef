"""The in-process change bus (`store.api.ChangeBus` for one process).

Theory of operation: the backend calls `publish` on the event loop thread, after the
commit that made the change durable, in commit order. Each subscription owns a bounded
deque; a subscriber that lets it fill up loses its backlog and gets one `Resync`
instead (then no more events until it has taken the `Resync`: whatever happened in
between is in the state it reloads). The bus holds subscriptions weakly, so an iterator
that is dropped without `aclose` unsubscribes itself when it is garbage collected.

Events applied after a reload may repeat what the reload already saw; subscribers
apply them idempotently (a known UID added again, flags set to what they are).

Must not: query the store, block, or be touched from any thread but the loop's.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable, Iterable

from pillarbox.model import Change, Resync

DEFAULT_BACKLOG = 1024


class Subscription:
    """An async iterator of one account's changes (implements `store.api.Subscription`)."""

    def __init__(self, bus: InProcessChangeBus, account_id: int, backlog: int) -> None:
        self._bus = bus
        self.account_id = account_id
        self._queue: deque[Change] = deque()
        self.backlog = backlog
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._resync_pending = False
        self._listener: Callable[[Change], None] | None = None

    def listen(self, callback: Callable[[Change], None]) -> None:
        """Hand each change to `callback` as it is published (on the loop, inside
        `publish`), instead of queueing it for `__anext__`; what is queued goes first.
        For a subscriber that only records changes: an IMAP session is then woken once
        per change rather than a pump task and then the session, which with ten
        thousand idle sessions of one account halves the loop turns of a delivery. The
        callback must not block or raise. `pending()` stays 0: nothing waits unseen."""
        while self._queue:
            change = self._queue.popleft()
            self._resync_pending = False
            callback(change)
        self._listener = callback

    def _push(self, change: Change) -> None:
        if self._closed or self._resync_pending:
            return
        listener = self._listener
        if listener is not None:
            listener(change)
            return
        if len(self._queue) >= self.backlog:
            self._queue.clear()
            self._queue.append(Resync(self.account_id))
            self._resync_pending = True
        else:
            self._queue.append(change)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Change:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        change = self._queue.popleft()
        if isinstance(change, Resync):
            self._resync_pending = False
        return change

    def pending(self) -> int:
        """Events queued and not yet taken (for tests and metrics)."""
        return len(self._queue)

    async def aclose(self) -> None:
        """Unsubscribe; a pending `__anext__` ends with StopAsyncIteration."""
        if not self._closed:
            self._bus._remove(self)
            self._end()


class InProcessChangeBus:
    """Per-account fan-out of committed changes inside one process (implements
    `store.api.ChangeBus`)."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self.backlog = backlog
        self._subs: dict[int, weakref.WeakSet[Subscription]] = {}
        self._closed = False

    def subscribe(self, account_id: int) -> Subscription:
        """Register now (not at first iteration), so no change after this call is missed."""
        sub = Subscription(self, account_id, self.backlog)
        if self._closed:
            sub._end()
        else:
            self._subs.setdefault(account_id, weakref.WeakSet()).add(sub)
        return sub

    def publish(self, changes: Iterable[Change]) -> None:
        for change in changes:
            subs = self._subs.get(change.account_id)
            if subs:
                for sub in list(subs):
                    sub._push(change)

    def subscriber_count(self, account_id: int | None = None) -> int:
        if account_id is not None:
            return len(self._subs.get(account_id, ()))
        return sum(len(s) for s in self._subs.values())

    def subscribed_accounts(self) -> list[int]:
        """The accounts that have at least one subscriber now (a relay of other
        nodes' changes follows only these)."""
        return [account for account, subs in self._subs.items() if subs]

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.account_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.account_id]

    def close(self) -> None:
        """End every subscription (the store is closing)."""
        self._closed = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub._end()
        self._subs.clear()
