"""The outbound queue: a message waiting to be sent to other servers, and its state.

One queue entry is one message (one blob) with its envelope; each recipient carries its
own state, so a message to two domains can be delivered to one and deferred for the
other. The entry carries the schedule (`next_attempt`, `attempts`), a claim (a worker's
lease, so that two workers or nodes never send the same entry at once), and whether a
delay warning (RFC 3464 "delayed") has gone out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class RecipientState(enum.StrEnum):
    """Where one recipient of a queued message stands (RFC 3464 §2.3.3 actions)."""

    QUEUED = "queued"  # not yet delivered: due at the entry's next attempt
    DELIVERED = "delivered"  # the next hop answered 250 and announced DSN (or no DSN asked)
    RELAYED = "relayed"  # the next hop answered 250 but does not offer DSN (RFC 3461 §4.1)
    FAILED = "failed"  # 5xx, a permanent local refusal, or expired


class QueueOrigin(enum.StrEnum):
    """Why a message is in the queue: decides DKIM signing and bounce rules."""

    SUBMISSION = "submission"  # an authenticated local user sent it: sign with DKIM
    FORWARD = "forward"  # received for a local alias that points elsewhere
    BOUNCE = "bounce"  # a DSN we generated (null sender: never bounced itself)


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    address: str
    notify: str | None = None  # RFC 3461 §4.1 NOTIFY, as given ("SUCCESS,DELAY")
    orcpt: str | None = None  # RFC 3461 §4.2 ORCPT, as given ("rfc822;a@b")
    state: RecipientState = RecipientState.QUEUED
    status: str = ""  # RFC 3463 status of the last outcome ("5.1.1"), "" if none yet
    diagnostic: str = ""  # the remote reply or our own reason, one line
    remote_mta: str = ""  # host name of the server that answered, "" if none did
    position: int = 0  # index in the entry's recipient list (set by the store)


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """One recipient's result of one delivery attempt, recorded by `Store.record_outcomes`."""

    position: int
    state: RecipientState
    status: str
    diagnostic: str
    remote_mta: str = ""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    sender: str  # envelope sender, "" for the null reverse-path
    recipients: tuple[QueuedRecipient, ...]
    blob_id: int
    created_at: datetime
    next_attempt: datetime
    attempts: int = 0
    dsn_envid: str | None = None
    dsn_ret: str | None = None  # "FULL" or "HDRS" (RFC 3461 §4.3), None if not given
    last_error: str = ""
    origin: QueueOrigin = QueueOrigin.FORWARD
    warned: bool = False  # a delay DSN has been sent for this entry
    size: int = 0  # octets of the blob
    claimed_until: datetime | None = None  # a worker holds the entry until then; None: free

    @property
    def pending(self) -> tuple[QueuedRecipient, ...]:
        """Recipients still to be tried."""
        return tuple(r for r in self.recipients if r.state is RecipientState.QUEUED)


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key of a local domain (RFC 6376 §3.6.1 for the published part)."""

    domain: str  # canonical (A-label) domain name
    selector: str
    algorithm: str  # "ed25519-sha256" or "rsa-sha256"
    private_key: bytes  # PEM (PKCS#8)
    public_key: str  # base64 of the public key as published in p=
    created_at: datetime
