"""Outbound delivery policy: what happens to a queue entry after an attempt to send it.

Owns the decisions the queue runner (`pillarbox.queue.runner`) must not make itself:

- which recipients get a DSN, and which kind (RFC 3461 §4.1 NOTIFY). NEVER: none.
  Without NOTIFY we do what MTAs do: report failures and delays, not successes. A
  "relayed" DSN goes to a recipient that asked NOTIFY=SUCCESS when the next hop did not
  offer DSN (RFC 3461 §6.2.x: the report stops with us). A next hop that offers DSN was
  handed NOTIFY and ORCPT, so the report is its to send, not ours ("delivered" stays
  silent here). Never a DSN about a DSN: not for the null sender, not for origin BOUNCE
  (RFC 3461 §6.1, RFC 5321 §4.5.5);
- the back-off: `retry_initial` doubling per attempt up to `retry_max`, never past the
  entry's expiry, so an entry expires on time;
- expiry: `queue_lifetime` after `created_at`, recipients still pending fail with
  the last attempt's status (4.4.7 "delivery time expired" if none, RFC 3463 §3.5) and
  "delivery time expired; last error: ..." as diagnostic;
- the delay warning: once per entry (`warned`), when an attempt fails and the entry is
  older than `delay_warning` (0: never);
- where a DSN goes: to a local sender's INBOX through `DeliveryService` (it never goes out
  over SMTP and back in), otherwise into the queue with the null sender and origin BOUNCE;
- DKIM: `prepare` prepends a DKIM-Signature to messages we author (origin SUBMISSION and
  our own DSNs) when the From: domain has a key; a forwarded message is sent as received.

Must not: speak SMTP or DNS (the runner does), or import a front-end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pillarbox.config import DeliveryConfig
from pillarbox.mailauth import dkim
from pillarbox.message import addresses, get_header
from pillarbox.message.dsn import RecipientReport, Report, compose, decode_xtext
from pillarbox.model import (
    DkimKey,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    RecipientOutcome,
    RecipientState,
)
from pillarbox.rules.addresses import InvalidAddress, normalize_domain
from pillarbox.services.delivery import DeliveryService, Envelope
from pillarbox.services.errors import ServiceError
from pillarbox.services.queue import QueueService
from pillarbox.store.api import Store

log = logging.getLogger("pillarbox.outbound")

EXPIRED_STATUS = "4.4.7"  # RFC 3463: delivery time expired
MAX_DOUBLINGS = 40  # 2**40 × any sane retry_initial is far above any retry_max

Signer = Callable[[bytes, DkimKey], bytes]
"""Given a message and a key, the DKIM-Signature header field to prepend (CRLF-ended)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The decision after one attempt (`OutboundService.plan`)."""

    expired: tuple[RecipientOutcome, ...]  # pending recipients that now fail (4.4.7)
    failed: tuple[QueuedRecipient, ...]  # get a "failed" DSN
    relayed: tuple[QueuedRecipient, ...]  # get a "relayed" DSN
    delayed: tuple[QueuedRecipient, ...]  # get a "delayed" DSN (the one warning)
    next_attempt: datetime | None  # None: nothing left to try, the entry is done
    warned: bool | None  # set the entry's `warned` (None: unchanged)
    last_error: str


def apply_outcomes(entry: QueuedMessage, outcomes: Sequence[RecipientOutcome]) -> QueuedMessage:
    """The entry as it stands once `outcomes` are recorded."""
    by_position = {o.position: o for o in outcomes}
    recipients = []
    for r in entry.recipients:
        o = by_position.get(r.position)
        if o is not None:
            r = replace(
                r,
                state=o.state,
                status=o.status,
                diagnostic=o.diagnostic,
                remote_mta=o.remote_mta,
            )
        recipients.append(r)
    return replace(entry, recipients=tuple(recipients))


def _notify(r: QueuedRecipient) -> set[str] | None:
    if r.notify is None:
        return None
    return {v.strip().upper() for v in r.notify.split(",")}


def wants(r: QueuedRecipient, kind: str) -> bool:
    """Does `r` want a DSN of `kind` (SUCCESS, FAILURE, DELAY)? RFC 3461 §4.1; without
    NOTIFY, failures and delays (what MTAs do by default)."""
    notify = _notify(r)
    if notify is None:
        return kind in {"FAILURE", "DELAY"}
    return kind in notify and "NEVER" not in notify


class OutboundService:
    """Policy for outbound queue entries; the runner calls `prepare` and `settle`."""

    def __init__(
        self,
        store: Store,
        delivery: DeliveryService,
        queue: QueueService,
        *,
        hostname: str,
        config: DeliveryConfig,
        signer: Signer | None = None,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._queue = queue
        self.hostname = hostname
        self.config = config
        self._signer = signer

    # --- what to send --------------------------------------------------------------------
    async def prepare(self, entry: QueuedMessage) -> bytes:
        """The octets to send for `entry`: the queued message, DKIM-signed (RFC 6376) when
        we are its author, signing is on and its From: domain has a key."""
        data = await self._queue.read_message(entry)
        if not self.config.dkim_sign or entry.origin is QueueOrigin.FORWARD:
            return data
        domain = _from_domain(data)
        if domain is None:
            return data
        signer = self._signer or dkim.sign
        # The newest key of each algorithm: RFC 8463 §5 — an Ed25519 signature beside an
        # RSA one, for receivers that cannot verify Ed25519 yet (`dkim generate` makes both).
        newest: dict[str, DkimKey] = {}
        for key in await self._store.list_dkim_keys(domain):
            newest.setdefault(key.algorithm, key)
        if not newest:
            return data
        try:
            headers = [
                await asyncio.to_thread(signer, data, key)
                for key in sorted(newest.values(), key=lambda k: k.algorithm)
            ]
        except Exception:  # an unsigned message beats no message; the log says why
            log.exception(
                "queue %d: DKIM signing for %s failed, sending unsigned", entry.id, domain
            )
            return data
        return b"".join(headers) + data

    # --- what happens next -------------------------------------------------------------
    def next_delay(self, attempts: int) -> float:
        """Seconds to wait after attempt number `attempts + 1` (0-based count before it)."""
        c = self.config
        factor = float(2 ** min(attempts, MAX_DOUBLINGS))
        return min(c.retry_initial * factor, c.retry_max)

    def expires_at(self, entry: QueuedMessage) -> datetime:
        return entry.created_at + timedelta(seconds=self.config.queue_lifetime)

    def plan(
        self, entry: QueuedMessage, outcomes: Sequence[RecipientOutcome], now: datetime
    ) -> Plan:
        """Decide, without side effects, what follows the attempt that gave `outcomes`
        (`entry` as claimed, before them)."""
        after = apply_outcomes(entry, outcomes)
        touched = {o.position for o in outcomes}
        reports = bool(entry.sender) and entry.origin is not QueueOrigin.BOUNCE
        pending = after.pending
        expired: tuple[RecipientOutcome, ...] = ()
        next_attempt: datetime | None = None
        warned: bool | None = None
        delayed: tuple[QueuedRecipient, ...] = ()
        expiry = self.expires_at(entry)
        if pending and now >= expiry:
            expired = tuple(
                RecipientOutcome(
                    r.position,
                    RecipientState.FAILED,
                    # RFC 3463 §3.5 (X.4.7): the code of the actual problem when
                    # there is one (4.4.1: no connection...), as Postfix reports it.
                    r.status or EXPIRED_STATUS,
                    _expired_text(r.diagnostic),
                    r.remote_mta,
                )
                for r in pending
            )
            after = apply_outcomes(after, expired)
            touched |= {o.position for o in expired}
        elif pending:
            delay = timedelta(seconds=self.next_delay(entry.attempts))
            next_attempt = min(now + delay, expiry)
            c = self.config
            old = now - entry.created_at >= timedelta(seconds=c.delay_warning)
            if not entry.warned and c.delay_warning > 0 and old:
                warned = True
                if reports:
                    delayed = tuple(r for r in pending if wants(r, "DELAY"))
        changed = [r for r in after.recipients if r.position in touched]
        failed = tuple(
            r for r in changed if r.state is RecipientState.FAILED and wants(r, "FAILURE")
        )
        relayed = tuple(
            r for r in changed if r.state is RecipientState.RELAYED and wants(r, "SUCCESS")
        )
        if not reports:
            failed = relayed = ()
        last_error = next((r.diagnostic for r in after.pending if r.diagnostic), "")
        return Plan(expired, failed, relayed, delayed, next_attempt, warned, last_error)

    async def settle(
        self, entry: QueuedMessage, outcomes: Sequence[RecipientOutcome], now: datetime
    ) -> Plan:
        """Carry out `plan`: record expiries, send the DSNs, then reschedule the entry or
        remove it. The runner has already recorded `outcomes` themselves."""
        plan = self.plan(entry, outcomes, now)
        if plan.expired:
            await self._queue.record(entry.id, plan.expired)
            for o in plan.expired:
                log.info("queue %d: expired after %s: %s", entry.id, _age(entry, now), o.diagnostic)
        if plan.failed or plan.relayed or plan.delayed:
            original = await self._queue.read_message(entry)
            for action, group in (
                ("failed", plan.failed),
                ("relayed", plan.relayed),
                ("delayed", plan.delayed),
            ):
                if group:
                    await self._send_report(entry, original, action, group, now)
        if plan.next_attempt is None:
            await self._queue.done(entry.id)
        else:
            await self._queue.reschedule(
                entry.id, plan.next_attempt, plan.last_error, warned=plan.warned
            )
        return plan

    # --- DSNs ------------------------------------------------------------------------------
    def compose_report(
        self,
        entry: QueuedMessage,
        original: bytes,
        action: str,
        recipients: Sequence[QueuedRecipient],
        now: datetime,
    ) -> bytes:
        retry_until = self.expires_at(entry) if action == "delayed" else None
        report = Report(
            reporting_mta=self.hostname,
            sender=entry.sender,
            recipients=tuple(
                RecipientReport(
                    final_recipient=r.address,
                    action=action,
                    status=r.status or ("4.0.0" if action == "delayed" else "5.0.0"),
                    original_recipient=decode_xtext(r.orcpt) if r.orcpt else None,
                    remote_mta=r.remote_mta,
                    diagnostic=r.diagnostic,
                    last_attempt=now,
                    will_retry_until=retry_until,
                )
                for r in recipients
            ),
            arrival_date=entry.created_at,
            original=original,
            envid=decode_xtext(entry.dsn_envid) if entry.dsn_envid else None,
            ret=entry.dsn_ret,
        )
        return compose(report, now=now)

    async def _send_report(
        self,
        entry: QueuedMessage,
        original: bytes,
        action: str,
        recipients: Sequence[QueuedRecipient],
        now: datetime,
    ) -> None:
        data = self.compose_report(entry, original, action, recipients, now)
        try:
            await self.deliver_report(entry.sender, data)
        except ServiceError as exc:
            # The sender is gone (a local account deleted since) or storage failed: the
            # report is lost, the entry itself still goes on; say so loudly.
            log.warning(
                "queue %d: %s DSN to <%s> not delivered: %s", entry.id, action, entry.sender, exc
            )
            return
        log.info(
            "queue %d: %s DSN to <%s> for %s",
            entry.id,
            action,
            entry.sender,
            ", ".join(r.address for r in recipients),
        )

    async def deliver_report(self, sender: str, data: bytes) -> None:
        """Hand a DSN to its recipient (the original sender): local senders get it in their
        INBOX now; anyone else through the queue, with the null reverse-path (RFC 5321
        §4.5.5) and origin BOUNCE, so it is never bounced itself."""
        rcpt = await self._delivery.resolve(sender, relay_allowed=True)
        if rcpt.local:
            envelope = Envelope(
                sender="",
                recipients=(rcpt,),
                helo=self.hostname,
                client_ip="127.0.0.1",
                protocol="ESMTP",
            )
            incoming = self._delivery.begin(envelope)
            await incoming.write(data)
            await incoming.finish()  # wakes the runner itself if it queued anything
            return
        writer = self._store.new_blob()
        try:
            await writer.write(data)
            blob = await writer.finish()
        except BaseException:
            await writer.abort()
            raise
        await self._store.enqueue(
            "",
            [QueuedRecipient(address) for address in rcpt.remote],
            blob,
            origin=QueueOrigin.BOUNCE,
        )
        self._delivery.notify_enqueued()


def _expired_text(last: str) -> str:
    return f"delivery time expired; last error: {last}" if last else "delivery time expired"


def _age(entry: QueuedMessage, now: datetime) -> str:
    return str(now - entry.created_at).split(".")[0]


def _from_domain(data: bytes) -> str | None:
    """The canonical domain of the first From: address, None if there is none."""
    value = get_header(data, "From")
    if value is None:
        return None
    found = addresses(value)
    if not found:
        return None
    _, address = found[0]
    try:
        return normalize_domain(address.rpartition("@")[2])
    except InvalidAddress:
        return None
