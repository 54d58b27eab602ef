"""The change bus of several workers on one SQLite store (`store.api.StampingBus`).

Theory of operation. The SQLite writer of every worker takes one cross-process lock per
write transaction; after COMMIT, still holding it, it calls `stamp(changes)` in its
thread. `stamp` takes the next number of the shared `StampCounter` (the lock serialises
the increments, so stamps ascend in commit order across processes) and sends the
(stamp, changes) frame to the master, which forwards it to every other worker. The
frame is in the master's socket before the lock is released, so before any later
stamp exists.

Each worker then hands local changes (`publish_stamped`, on the loop) and remote ones
(`receive`) to its in-process bus in stamp order: a stamp that is the next one is
published at once (local ones synchronously, as a single process does: a STORE's own
FETCH responses come from it); a later one waits for the missing ones. A stamp can go
missing for good: a worker killed between its stamp and its send. The gap is skipped
after `hold` seconds, or at once when the master reports a worker's death — all frames
sent before that report have been forwarded ahead of it, so every stamp still missing
below the highest one received is lost. A stamp this worker gave itself and has not
yet published is never skipped (it is on its way to the loop). A frame arriving after
its stamp was skipped is not replayed out of order (a view takes new UIDs only
ascending): its accounts get a `Resync`, and their sessions reload.

A worker (re)starting starts after the counter's current value: what was committed
before, its sessions read from the store when they start (frames of those stamps still
on their way to it are dropped).

Must not: block the writer thread beyond one socket send, or touch the in-process bus
from any thread but the loop's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from pillarbox.model import Change, Resync
from pillarbox.store.api import ChangeBus, Subscription
from pillarbox.workers.wire import StampCounter, changes_body, changes_frame, changes_header

log = logging.getLogger("pillarbox.workers.bus")

HOLD = 1.0  # seconds a gap in the stamps may hold later changes back


class HubBus:
    """`store.api.StampingBus` in front of one worker's in-process bus."""

    def __init__(
        self,
        local: ChangeBus,
        counter: StampCounter,
        send: Callable[[bytes], None],
        *,
        hold: float = HOLD,
    ) -> None:
        self._local = local
        self._counter = counter
        self._send = send
        self._hold = hold
        self._next = counter.value + 1  # the first stamp not yet handed on
        self._first = self._next  # earlier ones were committed before this worker began
        self._waiting: dict[int, list[Change]] = {}  # later stamps, held for a gap
        self._own: set[int] = set()  # stamped here, not yet published (writer → loop)
        self._own_lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self.skipped = 0  # stamps given up on (for tests and the log)
        self.resyncs = 0  # late frames turned into a Resync

    # --- ChangeBus -------------------------------------------------------------------
    def publish(self, changes: Iterable[Change]) -> None:
        """Unstamped changes (a store without the stamping hook): this worker only."""
        self._local.publish(changes)

    def subscribe(self, account_id: int) -> Subscription:
        return self._local.subscribe(account_id)

    def close(self) -> None:
        self._cancel_timer()
        self._waiting.clear()
        self._local.close()

    # --- StampingBus -----------------------------------------------------------------
    def stamp(self, changes: Sequence[Change]) -> int:
        """In the writer thread, under the store's cross-process lock."""
        stamp = self._counter.next()
        with self._own_lock:
            self._own.add(stamp)
        self._send(changes_frame(stamp, changes))
        return stamp

    def publish_stamped(self, stamp: int, changes: Iterable[Change]) -> None:
        with self._own_lock:
            self._own.discard(stamp)
        self._arrive(stamp, list(changes))

    def receive_frame(self, payload: bytes) -> None:
        """A CHANGES frame from the master: only changes some session here follows are
        unpickled; the others still take their place in the order. A session that
        subscribes later reads the store, where those commits already are (a frame is
        sent after its COMMIT)."""
        stamp, accounts, offset = changes_header(payload)
        wanted = any(self.follows(account) for account in accounts)
        self.receive(stamp, changes_body(payload, offset) if wanted else [])

    def follows(self, account_id: int) -> bool:
        """Does any session of this worker follow the account's changes now?"""
        count = getattr(self._local, "subscriber_count", None)
        return count is None or bool(count(account_id))

    # --- from the master -------------------------------------------------------------
    def receive(self, stamp: int, changes: list[Change]) -> None:
        """Another worker's committed changes (on the loop)."""
        self._arrive(stamp, changes)

    def worker_died(self) -> None:
        """The master reports a dead worker: the gaps below what arrived are final."""
        self._skip_gaps()

    # --- ordering --------------------------------------------------------------------
    def _arrive(self, stamp: int, changes: list[Change]) -> None:
        if stamp < self._next:
            if stamp >= self._first:
                self._late(changes)
            return
        if stamp > self._next:
            self._waiting[stamp] = changes
            if self._timer is None:
                self._arm()
            return
        self._local.publish(changes)
        self._next += 1
        self._drain()

    def _drain(self) -> None:
        waiting = self._waiting
        while self._next in waiting:
            self._local.publish(waiting.pop(self._next))
            self._next += 1
        self._cancel_timer()
        if waiting:
            self._arm()  # a new gap: its own hold

    def _late(self, changes: list[Change]) -> None:
        """Changes whose stamp was skipped (or came before this worker started): their
        accounts' sessions reload rather than apply them out of order."""
        accounts = {change.account_id for change in changes}
        if accounts:
            self.resyncs += 1
            self._local.publish([Resync(account) for account in sorted(accounts)])

    def _skip_gaps(self) -> None:
        """Give up on every missing stamp below the highest waiting one, except stamps
        of this worker that are still on their way to the loop."""
        if not self._waiting:
            return
        top = max(self._waiting)
        with self._own_lock:
            own = sorted(s for s in self._own if self._next <= s < top)
        limit = own[0] if own else top
        while self._next < limit:
            if self._next in self._waiting:
                self._local.publish(self._waiting.pop(self._next))
            else:
                self.skipped += 1
                log.warning("change stamp %d never came (a worker died): skipped", self._next)
            self._next += 1
        self._drain()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._hold, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._skip_gaps()
        if self._waiting and self._timer is None:
            self._arm()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
