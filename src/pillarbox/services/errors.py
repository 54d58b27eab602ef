"""Service exceptions; each front-end maps them to its own replies in one table.

`Rejected` is permanent (SMTP 5xx, IMAP NO, POP3 -ERR), `TempFailure` is transient
(SMTP 4xx, IMAP NO [UNAVAILABLE]). `status` is the RFC 3463 enhanced status code: it
describes the mail system, not a protocol, so DSNs use it too. No protocol's reply codes
live here: where a front-end needs a distinction the status does not carry (SMTP's 553
beside 550, say), the service raises a subclass of its own and the front-end's table maps
the class.
"""

from __future__ import annotations

from pillarbox.store.errors import StoreUnavailable

# The store could not be reached (PostgreSQL restarting, a connection lost, SQLite's
# disk full): transient, like TempFailure, wherever a service let it through. Named
# here so that front-ends, which never import the store, can map it in their tables
# (SMTP 451 4.3.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) instead of treating a
# database restart as a bug.
StorageUnavailable = StoreUnavailable
UNAVAILABLE_TEXT = "Storage temporarily unavailable, try again later"


class ServiceError(Exception):
    """Base of service errors; the message is safe to show to the client."""

    def __init__(self, text: str, *, status: str = "5.0.0") -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class Rejected(ServiceError):
    """A permanent refusal."""


class TempFailure(ServiceError):
    """A transient failure; the client may try again later."""

    def __init__(self, text: str, *, status: str = "4.3.0") -> None:
        super().__init__(text, status=status)


class OverQuota(Rejected):
    """The recipient's mailbox is full (RFC 3463 5.2.2)."""

    def __init__(self, text: str = "Mailbox is over quota") -> None:
        super().__init__(text, status="5.2.2")


class LimitReached(Rejected):
    """A bound the server keeps (keywords per message or mailbox) would be passed.
    `mailbox_full`: the mailbox can take no new keyword at all (IMAP then stops offering
    to create keywords in PERMANENTFLAGS)."""

    def __init__(self, text: str, *, mailbox_full: bool = False) -> None:
        super().__init__(text)
        self.mailbox_full = mailbox_full


class AuthFailed(Exception):
    """Wrong user or password; deliberately says nothing about which."""


class AccountError(Exception):
    """A bad account-management request (unknown domain, duplicate user, weak password)."""


class QueueEntryGone(Exception):
    """The outbound queue entry no longer exists: finished by another worker, or deleted
    by the operator while it was being sent. The runner stops working on it."""

    def __init__(self, queue_id: int) -> None:
        super().__init__(f"no queue entry {queue_id}")
        self.queue_id = queue_id
