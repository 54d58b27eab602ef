"""The other nodes' changes on this node's bus: `PgChangeRelay`, LISTEN/NOTIFY in.

Every write transaction NOTIFYs what it changed (`notify`: ``v1|node|account|mailbox|
kind|modseq``, kinds a/f/x/m/r) and publishes its full events only on its own node's
bus. The relay turns the other nodes' notices back into the same events a local write
publishes (`MessagesAdded`, `FlagsChanged`, `MessagesExpunged`, `MailboxesChanged`,
`Resync`), so an IMAP IDLE session, a NOTIFY session or a webmail event stream on this
node hears of a message delivered on another one.

Theory of operation:
  * One dedicated connection outside the pool LISTENs on `notify.CHANNEL`. Notices of
    this node and of accounts without a subscriber here
    (`InProcessChangeBus.subscriber_count`) are dropped on arrival: no query at all.
  * The rest are coalesced for `WINDOW` seconds per mailbox, then read back with the
    store's own contract: `mailbox_status` first, then `changes_since(mailbox, seen)`,
    one pair per mailbox (not per session). Per mailbox the relay keeps what it has
    published up to, ``(modseq, uidnext)``: rows at or above that uidnext are new
    messages, the others flag changes, and the expunged UIDs an expunge. MODSEQs and
    UIDs of one mailbox are allocated under its row lock and commit in that order, so
    a row that is visible implies every earlier one is; reading the status *before*
    the rows keeps ``(modseq, uidnext)`` a consistent pair. A few mailboxes are read
    at once (`READ_CONCURRENCY`), each by one task, so its events keep their order.
  * A read-back also returns rows this node changed itself, and may be older than what
    this node's store published meanwhile (a local STORE or EXPUNGE committed after the
    read's snapshot, published before the relay's events): publishing it as it is would
    undo a newer flag or bring back an expunged message in a session's view. So the
    relay taps the local bus of every followed account (one listening subscription, not
    counted as a subscriber) and keeps, per mailbox, the newest row and the expunges the
    store published (`Local`); before publishing it drops what the bus already carried
    or what is older than it, and gives a new message its newer local row
    (`without_local`).
  * The other way round, a local change must not overtake another node's: a session
    that showed UID n+1 (added here) drops UID n (added there, relayed a few
    milliseconds later) for good. `LocalOrder`, the bus a PgStore publishes to on a
    node with a relay (`app.py`), hands on a local change of a followed mailbox only
    once every MODSEQ below it was handed on, waiting for the relay's read-back to fill
    a gap (at most `HOLD_MAX`); it also drops a local change that read-back already
    covered with newer rows.
  * A mailbox the relay has not followed yet (the first notice after an account got a
    subscriber here) has no such pair. Its notices say where to start (their lowest
    MODSEQ) and the lowest UID of the first ``a`` transaction says where new messages
    begin; where that cannot be told the rows go out both as added and as flags.
    Subscribers apply repeats idempotently (`services.view.SelectedView.record`), so a
    repeat costs a redundant FETCH at worst, while a missed event would hide a message.
  * Accounts with local subscribers are followed from their mailbox list
    (`list_mailboxes`), taken when the relay first meets the account (a notice, or the
    periodic look at `InProcessChangeBus.subscribed_accounts`); accounts that lost their
    last subscriber are forgotten.
  * On connection loss (`add_termination_listener`, a failed probe or LISTEN) the relay
    reconnects with backoff (`BACKOFF_MIN` doubling to `BACKOFF_MAX`), LISTENs *first*,
    then catches up every followed mailbox from its pair: missed changes become the
    ordinary events. A followed mailbox that vanished or has a new UIDVALIDITY gets
    `Resync(account)` (only for that account: a reload of every session at once is what
    the pairs exist to avoid); a changed mailbox list gets `MailboxesChanged`. An account
    that got subscribers here but was not followed yet when the connection went has no
    pair to catch up from: it gets `Resync` too.

Must not: publish a change because this node made it (the store does, with full rows),
query per session, or let a database error escape its tasks (it retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pillarbox.model import (
    Change,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)
from pillarbox.store.changes import InProcessChangeBus, Subscription
from pillarbox.store.errors import NotFound, StoreUnavailable
from pillarbox.store.postgres import PgStore, notify
from pillarbox.store.postgres.core import CLOSE_TIMEOUT
from pillarbox.store.postgres.errors import map_error

log = logging.getLogger("pillarbox.store.postgres.bus")

WINDOW = 0.015  # seconds notices of one mailbox are gathered before one read
BACKOFF_MIN = 0.1  # first reconnect delay; doubles up to BACKOFF_MAX
BACKOFF_MAX = 2.0
SCAN_INTERVAL = 1.0  # how often accounts that gained or lost local subscribers are looked at
PROBE_INTERVAL = 10.0  # a quiet connection is probed this often (a dead peer sends no FIN)
PROBE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0
READ_CONCURRENCY = 4  # mailboxes read back at once (each holds a pool connection)
HOLD_MAX = 1.0  # seconds a local change may wait for the relay to fill a MODSEQ gap
LOCAL_MAX = 4096  # rows of local publishes kept per mailbox between two read-backs


@dataclass(slots=True)
class Seen:
    """What the relay has published of one mailbox: every change up to `modseq`, every
    message below `uidnext`. `blind`: taken from the mailbox list, not from publishing,
    so notices at or below `modseq` that arrive later were *not* published yet."""

    account_id: int
    uidvalidity: int
    modseq: int
    uidnext: int
    blind: bool = False


@dataclass(slots=True)
class Pending:
    """The notices of one mailbox gathered in one window (or a catch-up, no notice)."""

    low: int | None = None  # lowest MODSEQ noticed (a, f or x)
    high: int = 0  # highest MODSEQ noticed
    first_added: int | None = None  # lowest MODSEQ of an `a` notice
    first_expunge: int | None = None  # lowest MODSEQ of an `x` notice

    def note(self, kind: str, modseq: int) -> None:
        self.low = modseq if self.low is None else min(self.low, modseq)
        self.high = max(self.high, modseq)
        if kind == "a":
            self.first_added = _lowest(self.first_added, modseq)
        elif kind == "x":
            self.first_expunge = _lowest(self.first_expunge, modseq)

    def merge(self, other: Pending) -> None:
        if other.low is not None:
            self.low = _lowest(self.low, other.low)
        self.high = max(self.high, other.high)
        if other.first_added is not None:
            self.first_added = _lowest(self.first_added, other.first_added)
        if other.first_expunge is not None:
            self.first_expunge = _lowest(self.first_expunge, other.first_expunge)


def _lowest(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


@dataclass(slots=True)
class Followed:
    """An account with local subscribers: its mailbox list as last seen (to tell a
    changed list after an outage) and the mailboxes followed."""

    listing: frozenset[tuple[int, str, int, bool]]
    mailboxes: set[int] = field(default_factory=set)


def _listing(boxes: list[Mailbox]) -> frozenset[tuple[int, str, int, bool]]:
    return frozenset((b.id, b.name, b.uidvalidity, b.subscribed) for b in boxes)


@dataclass(slots=True)
class Local:
    """What this node's store published on its bus for one mailbox since the relay's
    last read-back there: the newest row of each message, and the expunged UIDs with
    their MODSEQ."""

    rows: dict[int, FlagRow] = field(default_factory=dict)
    expunged: dict[int, int] = field(default_factory=dict)
    added: set[int] = field(default_factory=set)  # UIDs whose MessagesAdded it carried

    def prune(self, upto: int) -> None:
        """Forget what a read-back that saw every change up to `upto` covered."""
        self.rows = {u: r for u, r in self.rows.items() if r.modseq > upto}
        self.expunged = {u: m for u, m in self.expunged.items() if m > upto}
        self.added &= self.rows.keys()


@dataclass(slots=True)
class ReadBack:
    """One mailbox's changes read after `since`, sorted for publishing."""

    added: list[FlagRow]
    flags: list[FlagRow]
    gone: list[int]


def classify(
    rows: list[FlagRow],
    gone: list[int],
    *,
    since: int,
    uidnext: int | None,
    pending: Pending | None,
) -> ReadBack:
    """Which rows read after `since` are new messages and which flag changes.

    `uidnext`: the first UID not yet published (rows from it on are new messages), or
    None when the relay did not know it; then the lowest UID still showing the first
    ``a`` notice's MODSEQ stands in, rows of an older MODSEQ are flag changes, and a
    row that cannot be placed goes out as both."""
    added: list[FlagRow] = []
    flags: list[FlagRow] = []
    if uidnext is not None:
        for row in rows:
            (added if row.uid >= uidnext else flags).append(row)
    else:
        first = pending.first_added if pending is not None else None
        if first is None:
            # No `a` among the notices: rows up to the highest MODSEQ noticed are flag
            # changes; later ones (noticed in a later window) cannot be placed yet.
            high = pending.high if pending is not None else since
            for row in rows:
                flags.append(row)
                if row.modseq > high:
                    added.append(row)
        else:
            at_first = [row.uid for row in rows if row.modseq == first]
            if at_first:
                # UIDs from `start` on were written by that transaction or later; a lower
                # one changed after it may be one of its rows changed again.
                start = min(at_first)
                for row in rows:
                    if row.uid >= start:
                        added.append(row)
                        continue
                    flags.append(row)
                    if row.modseq > first:
                        added.append(row)
            else:
                for row in rows:
                    flags.append(row)
                    if row.modseq >= first:
                        added.append(row)
    return ReadBack(added, flags, sorted(gone))


def without_local(read: ReadBack, local: Local | None) -> ReadBack:
    """`read` less what this node's bus already carried, and never older than it: a
    message expunged here is not brought back; a flag change is dropped when the bus
    had that row or a newer one; a message added here is no new message again (a
    newer row of it is a flag change); another new message keeps its place but takes
    the newer local row (a local FlagsChanged alone does not show a message a session
    has not heard of)."""
    if local is None or not (local.rows or local.expunged):
        return read
    added: list[FlagRow] = []
    flags: list[FlagRow] = []
    for row in read.added:
        if row.uid in local.expunged:
            continue
        mine = local.rows.get(row.uid)
        if row.uid in local.added:
            if mine is None or mine.modseq < row.modseq:
                flags.append(row)
        else:
            added.append(mine if mine is not None and mine.modseq > row.modseq else row)
    moved = {row.uid for row in flags}
    flags.extend(
        row
        for row in read.flags
        if row.uid not in local.expunged
        and row.uid not in moved
        and (row.uid not in local.rows or local.rows[row.uid].modseq < row.modseq)
    )
    flags.sort(key=lambda r: r.uid)
    gone = [uid for uid in read.gone if uid not in local.expunged]
    return ReadBack(added, flags, gone)


def events_for(
    account_id: int,
    mailbox_id: int,
    read: ReadBack,
    *,
    since: int,
    pending: Pending | None,
) -> list[Change]:
    """The events of a read-back, as a local write publishes them."""
    out: list[Change] = []
    if read.added:
        out.append(MessagesAdded(account_id, mailbox_id, tuple(read.added)))
    if read.flags:
        out.append(FlagsChanged(account_id, mailbox_id, tuple(read.flags)))
    if read.gone:
        # One event for every expunge read: its MODSEQ is the lowest one noticed, or the
        # lowest possible, so a session's HIGHESTMODSEQ never passes an unreported expunge.
        first_x = pending.first_expunge if pending is not None else None
        modseq = first_x if first_x is not None and first_x > since else since + 1
        out.append(MessagesExpunged(account_id, mailbox_id, tuple(read.gone), modseq))
    return out


def _span(change: Change) -> tuple[int, int, int] | None:
    """(mailbox, lowest MODSEQ, highest MODSEQ) of a message event; None for others."""
    if isinstance(change, MessagesExpunged):
        return change.mailbox_id, change.modseq, change.modseq
    if isinstance(change, MessagesAdded | FlagsChanged) and change.rows:
        modseqs = [row.modseq for row in change.rows]
        return change.mailbox_id, min(modseqs), max(modseqs)
    return None


class LocalOrder:
    """The bus `PgStore` publishes to on a node with a relay: in front of the node's
    `InProcessChangeBus`, it hands on this node's changes of a followed mailbox in
    MODSEQ order with what the relay publishes.

    Why: a session's view takes a new message only above the highest UID it holds
    (`SelectedView`, RFC 9051 §2.3.1.1: UIDs only ascend). A message another node added
    at MODSEQ n reaches this node's bus through the relay some milliseconds after the
    commit; a message added here at n+1 would be published at once, and the session,
    having shown n+1, would drop n for good. MODSEQs of one mailbox go up by one per
    transaction, so a local change whose lowest MODSEQ is more than one above what was
    handed on waits (`hold`, at most `HOLD_MAX` seconds: the relay normally fills the
    gap within its window) until the relay's read-back covers the gap (`advance`). The
    same holds back this node's own concurrent commits published out of order. A
    local change whose MODSEQ a read-back already covered is dropped: the relay
    published those rows as they were at its read, which is newer, and handing on the
    older local copy afterwards would undo a flag. Mailboxes the relay does not follow
    pass straight through."""

    def __init__(self, bus: InProcessChangeBus, hold: float = HOLD_MAX) -> None:
        self.bus = bus
        self.hold = hold
        self._done: dict[int, int] = {}  # followed mailbox -> highest MODSEQ handed on
        # followed mailbox -> (a, b): the relay published every row changed in MODSEQs
        # a+1..b as it was at its read (at least as new as any local change there).
        self._covered: dict[int, tuple[int, int]] = {}
        self._held: dict[int, deque[tuple[float, Change, int, int]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        # mailbox -> highest MODSEQ this node published while the mailbox was not
        # followed: `follow` starts from it, since a local commit published between the
        # relay's read of the mailbox and its `follow` is already handed on.
        self._passed: dict[int, int] = {}

    # --- store.api.ChangeBus ------------------------------------------------------------
    def publish(self, changes: Iterable[Change]) -> None:
        for change in changes:
            span = _span(change)
            if span is None or span[0] not in self._done:
                if span is not None:
                    self._passed[span[0]] = max(self._passed.get(span[0], 0), span[2])
                self.bus.publish([change])
                continue
            mailbox, low, high = span
            held = self._held.get(mailbox)
            if not held and low <= self._done[mailbox] + 1:
                self._hand_on(mailbox, change, low, high)
                continue
            loop = asyncio.get_running_loop()
            self._held.setdefault(mailbox, deque()).append(
                (loop.time() + self.hold, change, low, high)
            )
            if self._timer is None:
                self._timer = loop.call_later(self.hold, self._expire)

    def subscribe(self, account_id: int) -> Subscription:
        return self.bus.subscribe(account_id)

    def close(self) -> None:
        for mailbox in list(self._held):
            self._drain(mailbox, force=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.bus.close()

    # --- the relay's side ---------------------------------------------------------------
    def follow(self, mailbox: int, modseq: int) -> None:
        """Order the mailbox's changes from now on; everything up to `modseq` is known."""
        start = max(modseq, self._passed.pop(mailbox, 0))
        self._done[mailbox] = max(self._done.get(mailbox, start), start)

    def advance(self, mailbox: int, since: int, upto: int) -> None:
        """The relay published every row changed after `since` up to `upto`, as it read
        them: hand on what waited for that."""
        if mailbox not in self._done:
            return
        a, b = self._covered.get(mailbox, (since, since))
        self._covered[mailbox] = (a, max(b, upto)) if a <= since <= b else (since, upto)
        self._done[mailbox] = max(self._done[mailbox], upto)
        self._drain(mailbox)

    def forget(self, mailbox: int) -> None:
        self._drain(mailbox, force=True)
        self._done.pop(mailbox, None)
        self._covered.pop(mailbox, None)

    def held(self) -> int:
        """Changes waiting now (for tests and metrics)."""
        return sum(len(q) for q in self._held.values())

    # --- inside -------------------------------------------------------------------------
    def _hand_on(self, mailbox: int, change: Change, low: int, high: int) -> None:
        covered = self._covered.get(mailbox)
        if covered is None or not covered[0] < low <= high <= covered[1]:
            self.bus.publish([change])
        if mailbox in self._done:
            self._done[mailbox] = max(self._done[mailbox], high)

    def _drain(self, mailbox: int, *, force: bool = False, now: float | None = None) -> None:
        held = self._held.get(mailbox)
        while held:
            deadline, change, low, high = held[0]
            done = self._done.get(mailbox)
            late = now is not None and deadline <= now
            if not (force or late or done is None or low <= done + 1):
                break
            held.popleft()
            self._hand_on(mailbox, change, low, high)
        if not held:
            self._held.pop(mailbox, None)

    def _expire(self) -> None:
        """The relay did not fill a gap in time (it is reconnecting, or the MODSEQ was
        taken by a write nobody notified): hand on what waited too long."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for mailbox in list(self._held):
            log.debug("change relay: mailbox %d: a MODSEQ gap was not filled in time", mailbox)
            self._drain(mailbox, now=now)
        if self._held:
            first = min(q[0][0] for q in self._held.values())
            self._timer = loop.call_at(first, self._expire)


class PgChangeRelay:
    """Publishes other nodes' committed changes on this node's bus (module docstring).

    ``relay = PgChangeRelay(store, bus); await relay.start(); ...; await relay.stop()``;
    `store` must be open while the relay runs."""

    def __init__(
        self,
        store: PgStore,
        bus: InProcessChangeBus,
        *,
        window: float = WINDOW,
        scan_interval: float = SCAN_INTERVAL,
        probe_interval: float = PROBE_INTERVAL,
        order: LocalOrder | None = None,
    ) -> None:
        """`order`: the `LocalOrder` `store` publishes to, if any (`app.py` sets one
        up): the relay tells it what it follows and how far it published."""
        self.store = store
        self.bus = bus
        self.order = order
        self.node_id = store.node_id
        self.window = window
        self.scan_interval = scan_interval
        self.probe_interval = probe_interval
        self._conn: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._lost = asyncio.Event()
        self._wake = asyncio.Event()
        self._pending: dict[tuple[int, int], Pending] = {}
        self._pending_accounts: dict[int, set[str]] = {}
        self._catch_up = False
        self._accounts: dict[int, Followed] = {}
        self._seen: dict[int, Seen] = {}
        self._local: dict[int, Local] = {}  # mailbox -> what the store published here
        self._taps: dict[int, Subscription] = {}  # account -> the relay's listening subscription
        self._publishing = False  # the relay's own publish is under way (the taps skip it)
        self.connects = 0  # connections made (for tests and metrics)
        self.scans = 0  # looks at the subscribed accounts done (for tests and metrics)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and LISTEN (StoreUnavailable if the database cannot be reached),
        then run the reader and the connection keeper until `stop`."""
        self._stopping = False
        self._conn = await self._connect()
        self._tasks = [
            asyncio.create_task(self._work(), name="pg-relay-work"),
            asyncio.create_task(self._keep_connected(), name="pg-relay-connection"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a task stuck in a call that ignores cancellation must not hold
            # up the node's shutdown (its connection is dropped below regardless).
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("change relay: a task had failed", exc_info=task.exception())
        await self._drop_connection()
        if self.order is not None:
            for mailbox_id in self._seen:
                self.order.forget(mailbox_id)  # nothing waits for a relay that stopped
        taps, self._taps = self._taps, {}
        for tap in taps.values():
            await tap.aclose()

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.is_closed()

    def following(self, account_id: int) -> bool:
        """Whether the relay follows the account (it has subscribers here)."""
        return account_id in self._accounts

    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (tests terminate it)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    # --- the connection --------------------------------------------------------------
    async def _connect(self) -> asyncpg.Connection:
        """A new connection that LISTENs; the caller then catches up."""
        try:
            conn = await asyncpg.connect(self.store.dsn, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            raise map_error(exc) from exc
        try:
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(notify.CHANNEL, self._on_notify)
        except Exception as exc:
            conn.terminate()
            raise map_error(exc) from exc
        self.connects += 1
        return conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._on_terminated)
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), PROBE_TIMEOUT)
        except Exception:
            conn.terminate()

    def _on_terminated(self, conn: Any) -> None:
        if conn is self._conn and not self._stopping:
            self._lost.set()

    async def _keep_connected(self) -> None:
        """Probe a quiet connection; after a loss, reconnect with backoff and then have
        every followed mailbox caught up (LISTEN comes first, so nothing committed after
        the catch-up's reads goes unnoticed)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.probe_interval)
            if not self._lost.is_set() and not await self._probe():
                self._lost.set()
            if not self._lost.is_set():
                continue
            log.warning("change relay: lost its database connection, reconnecting")
            await self._drop_connection()
            delay = BACKOFF_MIN
            while True:
                try:
                    conn = await self._connect()
                except Exception as exc:  # e.g. 55000: database not accepting connections
                    log.debug("change relay: reconnect failed: %s", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                break
            self._conn = conn
            self._lost.clear()
            self._catch_up = True
            self._wake.set()
            log.info("change relay: reconnected, catching up")

    async def _probe(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), PROBE_TIMEOUT)
        except Exception:
            return False
        return True

    # --- notices in ------------------------------------------------------------------
    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        notice = notify.decode(payload)
        if notice is None:
            return
        if notice.node == self.node_id or not self._subscribed(notice.account_id):
            return
        if notice.kind in ("m", "r"):
            self._pending_accounts.setdefault(notice.account_id, set()).add(notice.kind)
        elif notice.kind in ("a", "f", "x"):
            key = (notice.account_id, notice.mailbox_id)
            self._pending.setdefault(key, Pending()).note(notice.kind, notice.modseq)
        else:
            return
        self._wake.set()

    # --- the reader ------------------------------------------------------------------
    async def _work(self) -> None:
        """Gather a window of notices, read them back, publish; look at the accounts
        with local subscribers now and then."""
        loop = asyncio.get_running_loop()
        next_scan = loop.time()
        failures = 0
        while True:
            timeout = max(0.0, next_scan - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._wake.is_set():
                self._wake.clear()
                await asyncio.sleep(self.window)  # coalesce what comes meanwhile
            try:
                if loop.time() >= next_scan:
                    await self._scan_accounts()
                    next_scan = loop.time() + self.scan_interval
                await self._pass()
                failures = 0
            except StoreUnavailable as exc:
                # The pool's connections are gone too: try again after a pause, with
                # nothing lost (what was taken is back in the pending maps).
                failures += 1
                delay = min(BACKOFF_MIN * 2 ** (failures - 1), BACKOFF_MAX)
                log.debug("change relay: read failed (%s), again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                self._wake.set()
            except Exception:
                # A bug, not an outage: retrying would fail the same way forever.
                log.exception("change relay: dropped the changes it could not read back")
                self._pending.clear()
                self._pending_accounts.clear()

    async def _pass(self) -> None:
        """Handle what is pending (and the catch-up after a reconnect)."""
        if self._catch_up:
            self._catch_up = False
            try:
                await self._catch_up_all()
            except BaseException:
                self._catch_up = True
                raise
        accounts, self._pending_accounts = self._pending_accounts, {}
        pending, self._pending = self._pending, {}
        try:
            for account_id in list(accounts):
                kinds = accounts[account_id]
                if account_id not in self._accounts:
                    await self._follow(account_id)
                elif "m" in kinds:
                    await self._relist(account_id)
                out: list[Change] = []
                if "m" in kinds:
                    out.append(MailboxesChanged(account_id))
                if "r" in kinds:
                    out.append(Resync(account_id))
                self._publish(out)
                del accounts[account_id]
            for account_id in sorted({a for a, _ in pending} - self._accounts.keys()):
                await self._follow(account_id)
            # Mailboxes are independent: a few read at once (each one by one task, so
            # one mailbox's events keep their order), not one pool connection each.
            gate = asyncio.Semaphore(READ_CONCURRENCY)

            async def one(key: tuple[int, int]) -> None:
                async with gate:
                    await self._read_back(key[0], key[1], pending[key])
                    del pending[key]

            results = await asyncio.gather(*map(one, list(pending)), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            self._requeue(accounts, pending)
            raise

    def _requeue(
        self, accounts: dict[int, set[str]], pending: dict[tuple[int, int], Pending]
    ) -> None:
        for account_id, kinds in accounts.items():
            self._pending_accounts.setdefault(account_id, set()).update(kinds)
        for key, p in pending.items():
            now = self._pending.get(key)
            if now is None:
                self._pending[key] = p
            else:
                p.merge(now)
                self._pending[key] = p

    async def _read_back(self, account_id: int, mailbox_id: int, pending: Pending | None) -> None:
        """Read one mailbox's changes since what was published and publish them."""
        seen = self._seen.get(mailbox_id)
        low = pending.low if pending is not None else None
        if seen is None or (seen.blind and low is not None and low - 1 < seen.modseq):
            if low is None:
                return  # nothing noticed and nothing known: nothing to catch up
            since, uidnext = low - 1, None
        else:
            since, uidnext = seen.modseq, seen.uidnext
        try:
            status = await self.store.mailbox_status(mailbox_id)
        except NotFound:
            self._forget_mailbox(mailbox_id)
            return
        if seen is not None and seen.uidvalidity != status.uidvalidity:
            # Not the mailbox the sessions know any more (RFC 9051 §2.3.1.1).
            self._publish([Resync(account_id)])
            since, uidnext = status.highestmodseq, status.uidnext
            rows: list[FlagRow] = []
            gone: list[int] = []
        else:
            rows, gone = await self.store.changes_since(mailbox_id, since)
        # No await from here to the publish: what the taps recorded so far is all the
        # local bus carried before these events.
        read = classify(rows, gone, since=since, uidnext=uidnext, pending=pending)
        local = self._local.get(mailbox_id)
        read = without_local(read, local)
        self._seen[mailbox_id] = seen = Seen(
            account_id,
            status.uidvalidity,
            max([since, status.highestmodseq, *(r.modseq for r in rows)]),
            max([uidnext or 0, status.uidnext, *(r.uid + 1 for r in rows)]),
        )
        if local is not None:
            local.prune(seen.modseq)
        followed = self._accounts.get(account_id)
        if followed is not None:
            followed.mailboxes.add(mailbox_id)
        self._publish(events_for(account_id, mailbox_id, read, since=since, pending=pending))
        if self.order is not None:
            self.order.follow(mailbox_id, seen.modseq)
            self.order.advance(mailbox_id, since, seen.modseq)

    def _publish(self, changes: list[Change]) -> None:
        if not changes:
            return
        self._publishing = True
        try:
            self.bus.publish(changes)
        finally:
            self._publishing = False

    # --- the local bus ---------------------------------------------------------------
    def _subscribed(self, account_id: int) -> bool:
        """Whether the account has subscribers here besides the relay's own tap."""
        return self.bus.subscriber_count(account_id) > (account_id in self._taps)

    def _subscribed_accounts(self) -> set[int]:
        return {a for a in self.bus.subscribed_accounts() if self._subscribed(a)}

    def _tap(self, change: Change) -> None:
        """Inside the local bus's publish: remember what this node's store published
        for followed mailboxes (`Local`), never what the relay publishes itself."""
        if self._publishing:
            return
        if isinstance(change, MessagesAdded | FlagsChanged | MessagesExpunged):
            if change.mailbox_id not in self._seen:
                return
            local = self._local.setdefault(change.mailbox_id, Local())
            if len(local.rows) + len(local.expunged) >= LOCAL_MAX:
                # A mailbox only this node writes has no read-back to prune it; the
                # newest rows matter most, and a read-back repeats at worst.
                local.rows.clear()
                local.expunged.clear()
                local.added.clear()
            if isinstance(change, MessagesExpunged):
                for uid in change.uids:
                    local.expunged[uid] = change.modseq
                    local.rows.pop(uid, None)
            else:
                for row in change.rows:
                    have = local.rows.get(row.uid)
                    if have is None or have.modseq < row.modseq:
                        local.rows[row.uid] = row
                if isinstance(change, MessagesAdded):
                    local.added.update(row.uid for row in change.rows)

    # --- following accounts ----------------------------------------------------------
    async def _scan_accounts(self) -> None:
        """Follow accounts that gained local subscribers, forget those that lost them."""
        now = self._subscribed_accounts()
        for account_id in list(self._accounts):
            if account_id not in now:
                await self._forget_account(account_id)
        for account_id in now:
            if account_id not in self._accounts:
                await self._follow(account_id)
        self.scans += 1

    async def _follow(self, account_id: int) -> None:
        """Start following an account from its mailbox list (blind: the notices already
        under way may predate the list, and are read back from their own MODSEQ)."""
        if account_id not in self._taps:
            # Before the list is read: what the store publishes from now on is known.
            tap = self.bus.subscribe(account_id)
            tap.listen(self._tap)
            self._taps[account_id] = tap
        boxes = await self.store.list_mailboxes(account_id)
        followed = Followed(_listing(boxes))
        self._accounts[account_id] = followed
        for box in boxes:
            self._track_listed(followed, box)

    def _track_listed(self, followed: Followed, box: Mailbox) -> None:
        followed.mailboxes.add(box.id)
        if box.id not in self._seen:
            self._seen[box.id] = Seen(
                box.account_id, box.uidvalidity, box.highestmodseq, box.uidnext, blind=True
            )
            if self.order is not None:
                self.order.follow(box.id, box.highestmodseq)

    async def _relist(self, account_id: int) -> list[Mailbox]:
        """After a mailbox change: follow new mailboxes, forget deleted ones."""
        followed = self._accounts[account_id]
        boxes = await self.store.list_mailboxes(account_id)
        followed.listing = _listing(boxes)
        ids = {b.id for b in boxes}
        for mailbox_id in followed.mailboxes - ids:
            self._forget_mailbox(mailbox_id)
        for box in boxes:
            self._track_listed(followed, box)
        return boxes

    def _forget_mailbox(self, mailbox_id: int) -> None:
        self._local.pop(mailbox_id, None)
        if self.order is not None:
            self.order.forget(mailbox_id)
        seen = self._seen.pop(mailbox_id, None)
        if seen is not None and (followed := self._accounts.get(seen.account_id)):
            followed.mailboxes.discard(mailbox_id)

    async def _forget_account(self, account_id: int) -> None:
        followed = self._accounts.pop(account_id, None)
        if followed is not None:
            for mailbox_id in followed.mailboxes:
                self._seen.pop(mailbox_id, None)
                self._local.pop(mailbox_id, None)
                if self.order is not None:
                    self.order.forget(mailbox_id)
        tap = self._taps.pop(account_id, None)
        if tap is not None:
            await tap.aclose()

    async def _catch_up_all(self) -> None:
        """After a reconnect: what every followed account missed meanwhile, as ordinary
        events; Resync only for an account one of whose mailboxes vanished or changed
        UIDVALIDITY, or one that got its subscribers here too late to be followed before
        the connection went (nothing tells what it missed: a few sessions reload)."""
        unfollowed = self._subscribed_accounts() - self._accounts.keys()
        for account_id in sorted(unfollowed):
            await self._follow(account_id)
            self._publish([Resync(account_id)])
        for account_id in list(self._accounts):
            if account_id in unfollowed:
                continue
            if not self._subscribed(account_id):
                await self._forget_account(account_id)
                continue
            followed = self._accounts[account_id]
            before = followed.listing
            known = {m: self._seen[m] for m in followed.mailboxes if m in self._seen}
            boxes = await self._relist(account_id)
            by_id = {b.id: b for b in boxes}
            lost = any(
                m not in by_id or by_id[m].uidvalidity != s.uidvalidity for m, s in known.items()
            )
            out: list[Change] = []
            if followed.listing != before:
                out.append(MailboxesChanged(account_id))
            if lost:
                out.append(Resync(account_id))
                for box in boxes:  # the reload reads the present state: follow from it
                    self._seen[box.id] = Seen(
                        account_id, box.uidvalidity, box.highestmodseq, box.uidnext
                    )
                    if self.order is not None:
                        self.order.follow(box.id, box.highestmodseq)
                        self.order.advance(box.id, box.highestmodseq, box.highestmodseq)
            self._publish(out)
            if lost:
                continue
            for mailbox_id, seen in known.items():
                if by_id[mailbox_id].highestmodseq > seen.modseq:
                    seen.blind = False
                    await self._read_back(account_id, mailbox_id, None)
