"""The outbound queue: a message waiting to be sent to other servers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    address: str
    notify: str | None = None  # RFC 3461 §4.1 NOTIFY, as given ("SUCCESS,DELAY")
    orcpt: str | None = None  # RFC 3461 §4.2 ORCPT, as given ("rfc822;a@b")


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
    dsn_ret: str | None = None
    last_error: str = ""
