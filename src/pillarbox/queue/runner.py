"""The queue runner: claims due entries of the outbound queue and sends them.

Theory of operation: one loop claims due entries (`QueueService.claim`, held for a
lease longer than an attempt can take) while fewer than `max_connections` entries are
in flight, and starts one task per entry. A task signs the message if it should
(`OutboundService.prepare`), groups the pending recipients by domain (all of them
together when a relay is set), and sends to each group concurrently: the group's hops
from `mx.Router` in order, each hop's addresses in order, over sessions from the shared
`client.Pool` (bounded per destination and in total, reused for the next message to
the same destination). As soon as a peer has given its final reply to a transaction,
the definite outcomes (delivered, relayed, failed) are recorded (`QueueService.record`)
before anything else happens, so a crash can never send twice what a peer accepted.
Recipients the peer deferred are tried at the next MX host; what is still deferred at
the end is recorded too, with its last reply. `OutboundService.settle` then decides:
DSNs, reschedule (back-off) or done.

Between claims the loop waits for `wake()` (the service layer calls it when it queues
something, through `DeliveryService.on_enqueue`) or for the poll interval. `stop()`
stops claiming, waits briefly for sends in flight, then cancels them: their entries'
claims expire and they are tried again (a peer that had already answered 250 was
recorded first).

Several nodes on one database each run a runner over the one queue: a claim takes only
entries no other node holds (the store's claims name their node), an entry whose node
died is claimed again once its lease runs out, and `start` releases only the claims
this node's earlier run left (`QueueService.release_claims`).

Each outcome gets one INFO line, as Postfix writes them:
``queue 12: to=<bob@remote.test>, relay=mx.remote.test[192.0.2.1]:25, status=sent (250 ...)``.

Must not: decide retries or DSNs (`services.outbound`), or touch the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pillarbox.config import Config, nameservers, parse_address
from pillarbox.model import QueuedMessage, QueuedRecipient, RecipientOutcome, RecipientState
from pillarbox.queue.client import Endpoint, Pool, Session, SessionError, SessionPolicy, Transaction
from pillarbox.queue.mx import Hop, RouteError, Router, make_resolver
from pillarbox.services.context import Services
from pillarbox.services.errors import QueueEntryGone

log = logging.getLogger("pillarbox.queue")

POLL_INTERVAL = 1.0  # seconds between claims when nothing wakes the runner
IDLE_TIMEOUT = 5.0  # an unused session is closed after this long
MAX_ADDRESSES = 5  # addresses tried per destination and attempt (Postfix: 5)
STOP_GRACE = 5.0  # seconds `stop` waits for sends in flight

_STATUS_WORD = {
    RecipientState.DELIVERED: "sent",
    RecipientState.RELAYED: "sent",
    RecipientState.FAILED: "bounced",
    RecipientState.QUEUED: "deferred",
}


def session_policy(config: Config) -> SessionPolicy:
    """Sessions to MX hosts: opportunistic TLS, unverified (see `client`)."""
    d = config.delivery
    return SessionPolicy(
        config.server.hostname,
        d.connect_timeout,
        d.command_timeout,
        source_address=d.source_address,
    )


def relay_policy(config: Config) -> SessionPolicy:
    """Sessions to the relay: TLS required, verified unless `relay_tls_verify` is off,
    with the relay credentials."""
    d = config.delivery
    password = ""
    if d.relay_password_file:
        password = Path(d.relay_password_file).read_text(encoding="utf-8").strip()
    return SessionPolicy(
        config.server.hostname,
        d.connect_timeout,
        d.command_timeout,
        implicit_tls=d.relay_security == "tls",
        require_tls=d.relay_security == "starttls",
        verify_tls=d.relay_tls_verify,
        username=d.relay_user,
        password=password,
        source_address=d.source_address,
    )


def lease_for(config: Config) -> float:
    """How long a claim holds: every address tried to its last command's timeout (a
    session is a connect, about eight commands and DATA at twice the command timeout)."""
    d = config.delivery
    if d.claim_lease > 0:
        return d.claim_lease
    return MAX_ADDRESSES * (d.connect_timeout + 10 * d.command_timeout) + 60.0


class QueueRunner:
    """Sends the outbound queue. `QueueRunner(services, config)`; `await start()`,
    `await stop()`; `wake()` when something was queued."""

    def __init__(
        self,
        services: Services,
        config: Config,
        *,
        router: Router | None = None,
        poll_interval: float = POLL_INTERVAL,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        d = config.delivery
        self._queue = services.queue
        self._outbound = services.outbound
        relay = parse_address(d.relay, "delivery.relay") if d.relay else None
        self.router = router or Router(
            make_resolver(nameservers(config.dns), config.dns.timeout),
            port=d.port,
            allow_private_networks=d.allow_private_networks,
            relay=relay,
        )
        self._mx_policy = session_policy(config)
        self._relay_policy = relay_policy(config) if relay is not None else None
        self.pool = Pool(
            max_total=d.max_connections,
            max_per_destination=d.max_connections_per_domain,
            idle_timeout=idle_timeout,
        )
        self.max_in_flight = d.max_connections
        self.lease = lease_for(config)
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        services.delivery.on_enqueue = self.wake

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        released = await self._queue.release_claims()
        if released:
            log.info("queue: %d entries held by this node's earlier run are due again", released)
        self._stopping = False
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="queue")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop claiming; give sends in flight `grace` seconds, then cancel them (their
        claims expire and the entries are tried again)."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.pool.close()

    def wake(self) -> None:
        """Claim now rather than at the next poll (something was queued)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before claiming: a wake-up during the claim is kept
            try:
                await self.pool.expire_idle()
                room = self.max_in_flight - len(self._tasks)
                claimed = await self._queue.claim(room, self.lease) if room > 0 else []
            except Exception:
                log.exception("queue: claiming due entries failed")
                claimed = []
            for entry in claimed:
                task = asyncio.get_running_loop().create_task(self.deliver(entry))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            if claimed and len(claimed) == room:
                continue  # more may be due: claim again once there is room
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # room for another entry

    # --- one entry --------------------------------------------------------------------------
    async def deliver(self, entry: QueuedMessage) -> None:
        """One attempt at `entry` (claimed): send, record, settle. Never raises: a
        failure is logged and the claim left to expire, so the entry is tried again."""
        try:
            if not entry.pending:
                await self._settle_left_over(entry)
                return
            data = await self._outbound.prepare(entry)
            if self.router.relay is not None:
                groups = {"[relay]": list(entry.pending)}
            else:
                groups = {}
                for r in entry.pending:
                    groups.setdefault(r.address.rpartition("@")[2].lower(), []).append(r)
            results = await asyncio.gather(
                *(self._deliver_group(entry, dest, rcpts, data) for dest, rcpts in groups.items()),
                return_exceptions=True,  # every group ends before a failure is raised
            )
            outcomes: list[RecipientOutcome] = []
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                outcomes.extend(result)
            await self._outbound.settle(entry, outcomes, datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except QueueEntryGone:
            # The operator deleted it (or another worker finished it) meanwhile.
            log.info("queue %d: removed while being sent; nothing more to do", entry.id)
        except Exception:
            log.exception("queue %d: attempt failed; the entry will be retried", entry.id)
            await self._retry_later(entry)

    async def _settle_left_over(self, entry: QueuedMessage) -> None:
        """Every recipient has its outcome, but the worker that recorded them died before
        settling the entry: settle it now with those outcomes. A DSN it had already sent
        before dying is sent again (at least once, rather than lost)."""
        log.info("queue %d: settling an entry an earlier run left unfinished", entry.id)
        outcomes = [
            RecipientOutcome(r.position, r.state, r.status, r.diagnostic, r.remote_mta)
            for r in entry.recipients
        ]
        await self._outbound.settle(entry, outcomes, datetime.now(UTC))

    async def _retry_later(self, entry: QueuedMessage) -> None:
        """After an unexpected failure (the store, a bug): try again after the usual
        back-off rather than when the claim runs out. Outcomes recorded so far stand."""
        delay = timedelta(seconds=self._outbound.next_delay(entry.attempts))
        try:
            await self._queue.reschedule(
                entry.id, datetime.now(UTC) + delay, "internal error (see the server log)"
            )
        except QueueEntryGone:
            pass
        except Exception:
            log.exception("queue %d: could not reschedule; the claim will expire", entry.id)

    async def _deliver_group(
        self,
        entry: QueuedMessage,
        destination: str,
        recipients: Sequence[QueuedRecipient],
        data: bytes,
    ) -> list[RecipientOutcome]:
        """Send to one destination; returns every recipient's outcome (final ones are
        recorded already, deferred ones are recorded here at the end)."""
        remaining = {r.position: r for r in recipients}
        deferred: dict[int, RecipientOutcome] = {}
        final: list[RecipientOutcome] = []

        def defer_all(status: str, text: str, host: str = "") -> None:
            for p in remaining:
                deferred[p] = RecipientOutcome(p, RecipientState.QUEUED, status, text, host)

        async def settle_now(outcomes: Sequence[RecipientOutcome], where: str) -> None:
            done = [o for o in outcomes if o.state is not RecipientState.QUEUED]
            if done:
                await self._queue.record(entry.id, done)  # first, before anything else
            for o in outcomes:
                self._log(entry, remaining.get(o.position), o, where)
                if o.state is RecipientState.QUEUED:
                    deferred[o.position] = o
                else:
                    final.append(o)
                    remaining.pop(o.position, None)
                    deferred.pop(o.position, None)

        # A session kept from an earlier message to this destination goes first.
        session = await self.pool.take_idle(destination)
        if session is not None:
            await self._send(entry, destination, session, remaining, data, settle_now)
        if remaining:
            await self._try_hops(entry, destination, remaining, data, settle_now, defer_all)
        if deferred:
            await self._queue.record(entry.id, list(deferred.values()))
        return final + list(deferred.values())

    async def _try_hops(
        self,
        entry: QueuedMessage,
        destination: str,
        remaining: dict[int, QueuedRecipient],
        data: bytes,
        settle_now: _Settle,
        defer_all: _DeferAll,
    ) -> None:
        relay = self.router.relay is not None
        try:
            hops = await self.router.route(destination)
        except RouteError as exc:
            state = RecipientState.FAILED if exc.permanent else RecipientState.QUEUED
            outcomes = [RecipientOutcome(p, state, exc.status, exc.text) for p in remaining]
            await settle_now(outcomes, "none")
            return
        tried = 0
        for hop in hops:
            implicit = not relay and len(hops) == 1 and hop.host == destination
            try:
                addresses = await self.router.addresses(hop, implicit=implicit)
            except RouteError as exc:
                if exc.permanent:
                    outcomes = [
                        RecipientOutcome(p, RecipientState.FAILED, exc.status, exc.text)
                        for p in remaining
                    ]
                    await settle_now(outcomes, hop.host)
                    return
                defer_all(exc.status, exc.text)  # DNS said so, no server: no Remote-MTA
                log.info("queue %d: %s: %s", entry.id, hop.host, exc.text)
                continue
            for address in addresses:
                if tried >= MAX_ADDRESSES:
                    return
                tried += 1
                session = await self._open(entry, destination, hop, address, defer_all)
                if session is None:
                    continue  # the next address of this host
                await self._send(entry, destination, session, remaining, data, settle_now)
                break  # answered: what it deferred goes to the next host (RFC 5321 §5.1)
            if not remaining:
                return

    async def _open(
        self, entry: QueuedMessage, destination: str, hop: Hop, address: str, defer_all: _DeferAll
    ) -> Session | None:
        endpoint = Endpoint(hop.host, address, hop.port)
        reused = await self.pool.acquire(destination, endpoint)
        if reused is not None:
            return reused
        policy = self._relay_policy if hop.relay and self._relay_policy else self._mx_policy
        try:
            session = await Session.open(endpoint, policy)
        except SessionError as exc:
            await self.pool.release(destination, None)
            defer_all(exc.status, exc.text, hop.host if exc.answered else "")
            log.info("queue %d: %s", entry.id, exc.text)  # the text names the endpoint
            return None
        except BaseException:
            await self.pool.release(destination, None)
            raise
        self.pool.opened += 1
        return session

    async def _send(
        self,
        entry: QueuedMessage,
        destination: str,
        session: Session,
        remaining: dict[int, QueuedRecipient],
        data: bytes,
        settle_now: _Settle,
    ) -> None:
        tx = Transaction(
            entry.sender,
            tuple(remaining.values()),
            data,
            envid=entry.dsn_envid,
            ret=entry.dsn_ret,
        )
        try:
            outcomes = await session.send(tx)
        except BaseException:
            session.broken = True  # cancelled mid-transaction: never reuse, never QUIT
            await self.pool.release(destination, session)
            raise
        try:
            await settle_now(outcomes, str(session.endpoint))
        finally:
            await self.pool.release(destination, session)

    def _log(
        self,
        entry: QueuedMessage,
        recipient: QueuedRecipient | None,
        outcome: RecipientOutcome,
        where: str,
    ) -> None:
        address = recipient.address if recipient is not None else f"#{outcome.position}"
        log.info(
            "queue %d: to=<%s>, relay=%s, status=%s %s (%s)",
            entry.id,
            address,
            where,
            _STATUS_WORD[outcome.state],
            outcome.status,
            outcome.diagnostic,
        )


class _Settle(Protocol):
    async def __call__(self, outcomes: Sequence[RecipientOutcome], where: str) -> None: ...


class _DeferAll(Protocol):
    def __call__(self, status: str, text: str, host: str = "") -> None: ...
